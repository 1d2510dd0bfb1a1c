"""SpanTable answers what the writer asks of records exactly as the records themselves do."""

from __future__ import annotations

import pyarrow as pa

from llm_cost_tracker.budgets._ledger import SpendLedger
from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, PARTIAL
from llm_cost_tracker.sinks.identity import identity_keys, spend_rows
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import SpanTable, pico_values
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import DUPLICATE, PRICED, UNPRICED, SpanRecord, TokenUsage


def _records() -> list[SpanRecord]:
    out = []
    for i, (status, cost) in enumerate([(PRICED, 1_234_567), (UNPRICED, None), (PARTIAL, 99), (DUPLICATE, None),
                                        (PRICED, -(2**62)), (PRICED, 2**63 - 1)]):
        r = span_record(tenant=f"t{i % 2}", provider="openai", response_model="gpt-4o" if i % 3 else "",
                        request_model="gpt-4o-mini", pricing_status=status, cost_pusd=cost,
                        usage=TokenUsage(100 + i, 20, 5, 1, 2), start_time_ns=1_790_000_000_000_000_000 + i)
        if status == PARTIAL:
            r.attributes[MISSING_ATTRIBUTE] = "audio"
        if status == PRICED:
            r.reported_cost_pusd = 7 * i
            r.cache_savings_pusd = i
        out.append(r)
    return out


def test_answers_like_the_records() -> None:
    records = _records()
    table = SpanTable(records_to_arrow(records))
    assert len(table) == len(records)
    assert table.identity_keys() == identity_keys(records)
    assert table.spend_rows() == spend_rows(records)
    assert records_to_arrow(table.to_records()).equals(table.table)
    assert table.subset([4, 0]).identity_keys() == identity_keys([records[4], records[0]])
    assert table.slice(2, 2).spend_rows() == spend_rows(records[2:4])
    assert SpendLedger().aggregate(table) == SpendLedger().aggregate(records)
    assert SpendLedger(["user.id"]).aggregate(table) == SpendLedger(["user.id"]).aggregate(records)


def test_costs_read_back_exactly() -> None:
    """Integer pico-USD in, the same integers out (int64's bounds included), nulls as None, at any offset."""
    records = _records()
    column = records_to_arrow(records).column("cost_usd")
    assert pico_values(column) == [r.cost_pusd for r in records]
    assert pico_values(column.combine_chunks().slice(3)) == [r.cost_pusd for r in records[3:]]
    assert pico_values(pa.chunked_array([], column.type)) == []


def test_concat_of_tables_and_records() -> None:
    records = _records()
    parts = SpanTable.concat([SpanTable(records_to_arrow(records[:2])), (records[2:5], None),
                              SpanTable(records_to_arrow(records[5:]))])
    assert parts.table.equals(records_to_arrow(records))
