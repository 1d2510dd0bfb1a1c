"""The in-process queue holds the columnar path's tables beside records, in order, bounded alike."""

from __future__ import annotations

import pytest

from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import QueueFull, SpanRecord


def _records(n: int) -> list[SpanRecord]:
    return [span_record(cost_pusd=i, attributes={"k": str(i)}) for i in range(n)]


def test_a_batch_with_a_table_is_one_table_in_order() -> None:
    q = MemoryQueue(capacity=1000)
    first, second, third = _records(3), _records(4), _records(2)
    acks = [q.publish(first), q.publish(SpanTable(records_to_arrow(second))), q.publish(third)]
    batch = q.take(100, 0.0)
    assert batch is not None and isinstance(batch.records, SpanTable)
    assert batch.records.table.equals(records_to_arrow(first + second + third))
    assert q.depth == 9
    q.commit(batch)
    assert q.depth == 0 and q.bytes == 0
    assert all(a.done() for a in acks)


def test_batches_of_records_alone_stay_records() -> None:
    q = MemoryQueue(capacity=1000)
    records = _records(5)
    q.publish(records)
    batch = q.take(100, 0.0)
    assert batch is not None and batch.records == records


def test_a_table_bigger_than_a_batch_is_written_in_parts() -> None:
    q = MemoryQueue(capacity=1000, ack_when_stored=True)
    records = _records(25)
    ack = q.publish(SpanTable(records_to_arrow(records)))
    seen = []
    while q.depth:
        batch = q.take(10, 0.0)
        assert batch is not None and isinstance(batch.records, SpanTable) and len(batch.records) <= 10
        seen.append(batch.records.table)
        assert not ack.done()
        q.commit(batch)
    assert ack.done() and q.bytes == 0
    assert [len(t) for t in seen] == [10, 10, 5]
    assert records_to_arrow(records).equals(SpanTable.concat([SpanTable(t) for t in seen]).table)


def test_tables_count_against_the_bounds() -> None:
    table = SpanTable(records_to_arrow(_records(10)))
    q = MemoryQueue(capacity=15, max_bytes=table.table.nbytes + 1)
    q.publish(table)
    assert q.bytes == table.table.nbytes
    with pytest.raises(QueueFull):
        q.publish(SpanTable(records_to_arrow(_records(6))))  # over the records' bound
    with pytest.raises(QueueFull):
        q.publish(SpanTable(records_to_arrow(_records(1))))  # over the bytes' bound
