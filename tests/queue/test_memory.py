"""The in-process queue: bounds, batching by size and age, acknowledgement."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest

from llm_cost_tracker.queue.memory import MemoryQueue, record_bytes, wire_record_bytes
from llm_cost_tracker.storage.rows import described_rows, records_to_arrow
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import AttributeColumns, QueueFull, SpanRecord


def recs(n: int) -> list[SpanRecord]:
    return [span_record() for _ in range(n)]


def test_full_queue_refuses_instead_of_growing() -> None:
    """Publishing past capacity raises QueueFull and keeps what was accepted."""
    q = MemoryQueue(capacity=10)
    q.publish(recs(8))
    with pytest.raises(QueueFull):
        q.publish(recs(3))
    assert q.depth == 8


@pytest.mark.serial  # the waits are timed
def test_take_waits_for_size_or_age() -> None:
    """A batch is released when it is full, or when its oldest record reaches the age limit."""
    q = MemoryQueue(capacity=100)
    q.publish(recs(5))
    q.publish(recs(5))
    started = time.monotonic()
    batch = q.take(max_records=10, max_age_seconds=5)
    assert batch is not None and len(batch.records) == 10
    assert time.monotonic() - started < 1
    q.publish(recs(3))
    started = time.monotonic()
    batch = q.take(max_records=10, max_age_seconds=0.2)
    assert batch is not None and len(batch.records) == 3
    assert time.monotonic() - started >= 0.15


def test_depth_counts_until_commit_and_stored_ack() -> None:
    """Records count against capacity until committed; in stored mode the publish future completes at commit."""
    q = MemoryQueue(capacity=10, ack_when_stored=True)
    ack = q.publish(recs(4))
    batch = q.take(10, 0.0)
    assert batch is not None and q.depth == 4 and not ack.done()
    q.commit(batch)
    assert q.depth == 0 and ack.done()


def test_close_drains_then_ends() -> None:
    """After close, take returns what is left and then None; publishing is refused."""
    q = MemoryQueue(capacity=10)
    q.publish(recs(2))
    q.close()
    with pytest.raises(QueueFull):
        q.publish(recs(1))
    batch = q.take(100, 60)
    assert batch is not None and len(batch.records) == 2
    assert q.take(100, 60) is None


def test_close_wakes_a_waiting_taker() -> None:
    """A taker blocked on an empty queue returns None promptly when the queue closes."""
    q = MemoryQueue(capacity=10)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(q.take(10, 60)))
    t.start()
    time.sleep(0.05)
    q.close()
    t.join(2)
    assert result == [None]


def big(n: int, value_bytes: int) -> list[SpanRecord]:
    return [span_record(attributes={"gen_ai.prompt": "x" * value_bytes}) for _ in range(n)]


def test_queue_is_bounded_in_bytes_as_well_as_records() -> None:
    """Large spans fill the byte bound long before the record capacity; committing frees the bytes again."""
    q = MemoryQueue(capacity=1_000_000, max_bytes=10 * 1024 * 1024)
    q.publish(big(100, 60_000))  # ~6 MB
    with pytest.raises(QueueFull, match="MiB"):
        q.publish(big(100, 60_000))
    assert q.depth == 100
    batch = q.take(1000, 0.0)
    assert batch is not None
    q.commit(batch)
    assert q.bytes == 0
    q.publish(big(100, 60_000))


def test_a_batch_of_records_stops_at_two_fifths_of_the_byte_bound() -> None:
    """Whole chunks up to 2/5 of the byte bound make a batch, and a batch is ready once that much is queued, even
    below ``max_records`` and its age: the batch in flight and the next one gathering fit the bound together."""
    q = MemoryQueue(capacity=1_000_000, max_bytes=16 * 1024 * 1024)
    sizes = []
    for _ in range(3):
        q.publish(big(10, 250_000))  # ~2.5 MB each
        sizes.append(q.bytes - sum(sizes))
    assert q.batch_bytes == 16 * 1024 * 1024 * 2 // 5 and 2 * sizes[0] <= q.batch_bytes < 3 * sizes[0]
    started = time.monotonic()
    batch = q.take(max_records=1_000, max_age_seconds=60)
    assert time.monotonic() - started < 5  # ready by its bytes, not by its age
    assert batch is not None and len(batch.records) == 20  # two chunks: the third would pass 2/5 of the bound
    rest = q.take(max_records=1_000, max_age_seconds=0)
    assert rest is not None and len(rest.records) == 10
    q.commit(batch)
    q.commit(rest)
    assert q.bytes == 0
    q.publish(big(40, 250_000))  # one chunk over 2/5 of the bound: taken alone, whole
    alone = q.take(max_records=1_000, max_age_seconds=0)
    assert alone is not None and len(alone.records) == 40


def test_one_chunk_over_the_byte_bound_is_taken_when_the_queue_is_empty() -> None:
    """A single request bigger than the byte bound is not refused forever (the request limits decide what is too big)."""
    q = MemoryQueue(capacity=1_000, max_bytes=1024)
    q.publish(big(2, 10_000))
    with pytest.raises(QueueFull):
        q.publish(big(1, 10))


def test_a_request_bigger_than_a_batch_is_written_in_parts_and_acknowledged_after_the_last() -> None:
    """A 25-record chunk with batches of 10 comes out as 10, 10, 5; its ack completes only at the last commit."""
    q = MemoryQueue(capacity=100, ack_when_stored=True)
    ack = q.publish(recs(25))
    sizes = []
    for _ in range(3):
        batch = q.take(10, 0.0)
        assert batch is not None
        sizes.append(len(batch.records))
        assert not ack.done()
        q.commit(batch)
    assert sizes == [10, 10, 5]
    assert ack.done() and q.depth == 0 and q.bytes == 0


def _decoded(values: list[str]) -> tuple[list[SpanRecord], int, int]:
    """Records decoded from one request whose spans carry ``values`` (and the usual GenAI attributes):
    (records, the request's bytes, the Python memory the records hold, measured)."""
    import tracemalloc

    from llm_cost_tracker.sources.otlp_decode import DecodeLimits, decode_spans, parse_request
    from llm_cost_tracker.testing import genai_attributes, make_request, make_span

    spans = [make_span({**genai_attributes(model="gpt-4o"), "app.note": v, "app.count": i, "app.ratio": i / 7})
             for i, v in enumerate(values)]
    payload = make_request(spans, {"service.name": "svc", "k8s.pod.name": "pod-" + "p" * 40}).SerializeToString()
    request = parse_request(payload)
    gc.collect()
    tracemalloc.start()
    try:
        records = decode_spans(request, DecodeLimits(max_value_bytes=1 << 20), checked=False).records
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return records, len(payload), held


@pytest.mark.parametrize("values", [
    ["short"] * 50,  # tiny values: the per-entry overhead dominates
    ["x" * 20_000] * 5,  # a few big prompts
    ["prix: 12 € — 価格 ¥" * 50] * 20,  # non-ASCII: 2-4 bytes per character in a str, 1-3 in UTF-8
])
def test_the_estimate_from_the_request_size_covers_what_decoded_records_hold(values: list[str]) -> None:
    """The receiver hands the queue its request's size; the estimate from it (no string read) is at least
    the memory the decoded records really hold, so the byte bound keeps bounding memory."""
    records, wire, held = _decoded(values)
    assert wire_record_bytes(records, wire) >= held
    assert wire_record_bytes(records, wire) <= 2 * record_bytes(records) + wire  # and not a wild over-count


def test_a_publish_with_the_request_size_is_bounded_by_it() -> None:
    """Bytes are counted from the request's size when the receiver gives it, and the bound applies to them."""
    q = MemoryQueue(capacity=1_000_000, max_bytes=10 * 1024 * 1024)
    q.publish(recs(10), wire_bytes=6 * 1024 * 1024)
    assert q.bytes >= 6 * 1024 * 1024
    with pytest.raises(QueueFull, match="MiB"):
        q.publish(recs(10), wire_bytes=6 * 1024 * 1024)
    batch = q.take(1000, 0.0)
    assert batch is not None
    q.commit(batch)
    assert q.bytes == 0


class _Attributes(dict[str, str]):
    """An attribute dict a weak reference can watch (a plain dict cannot be weakly referenced)."""


def _with_columns(n: int) -> tuple[list[SpanRecord], AttributeColumns]:
    """``n`` records, each with its own dict of one attribute, and the attribute columns that describe them."""
    dicts = [_Attributes({"k": f"v{i}"}) for i in range(n)]
    records = [span_record(attributes=d) for d in dicts]
    columns = AttributeColumns(["k"], [f"v{i}" for i in range(n)], np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                               np.arange(n, dtype=np.int32), np.arange(1, n + 1, dtype=np.int32), [1] * n, list(dicts))
    return records, columns


def _alive(refs: list[weakref.ref[_Attributes]]) -> list[bool]:
    gc.collect()
    return [ref() is not None for ref in refs]


def test_the_queue_lets_go_of_the_dicts_of_a_written_part_and_of_spans_left_out() -> None:
    """The columns keep their rows' dicts alive (rows are found by a dict's identity), so the queue keeps only
    those its records hold: the parts of a request already written, and the spans the stages left out, do not
    stay in memory until its last part is written; the writer's table is the same."""
    records, columns = _with_columns(6)
    refs = [weakref.ref(d) for d in columns.dicts]  # type: ignore[arg-type]
    kept = records[:5]  # the sixth left out by the stages
    expected = records_to_arrow(kept, [columns])
    q = MemoryQueue(capacity=100)
    q.publish(kept, columns=columns)
    del records, columns
    first = q.take(2, 0.0)  # a request bigger than a batch: written in parts
    assert first is not None and len(first.records) == 2
    table = records_to_arrow(first.records, first.columns)
    assert table.equals(expected.slice(0, 2))
    assert (described_rows([r.attributes for r in first.records], first.columns)[0] == 0).all()  # from the columns
    q.commit(first)
    del first, kept
    assert _alive(refs) == [False, False, True, True, True, False]  # what the queue still holds: the rest
    rest = q.take(10, 0.0)
    assert rest is not None and records_to_arrow(rest.records, rest.columns).equals(expected.slice(2))
    assert (described_rows([r.attributes for r in rest.records], rest.columns)[0] == 0).all()
    q.commit(rest)
    del rest
    assert _alive(refs) == [False] * 6
