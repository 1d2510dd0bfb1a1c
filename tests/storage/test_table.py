"""SpanTable answers what the writer asks of records exactly as the records themselves do."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from llm_cost_tracker.budgets._ledger import SpendLedger
from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, PARTIAL, Metrics
from llm_cost_tracker.sinks.identity import identity_keys, spend_rows
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import (
    DICTIONARY_COLUMNS,
    SpanTable,
    _first_seen,
    dictionary_schema,
    group_rows,
    pico_values,
    warm_up,
)
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import DUPLICATE, NO_USAGE, PRICED, UNPRICED, SpanRecord, TokenUsage


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


def _dictionary_form(table: pa.Table, twice: bool = False) -> pa.Table:
    """``table`` as the columnar path holds it: its names and map keys dictionary-encoded (``twice``: the tenant's
    dictionary holds each string twice, as a pool of resources naming one tenant can)."""
    out = table.cast(dictionary_schema(table.schema))
    if twice:
        tenant = out.column("tenant").combine_chunks()
        doubled = pa.concat_arrays([tenant.dictionary, tenant.dictionary])
        indices = tenant.indices.to_pylist()  # (the second half of the rows coded into the second copy)
        shifted = pa.array([i + len(tenant.dictionary) * (2 * k >= len(indices)) for k, i in enumerate(indices)],
                           pa.int32())
        out = out.set_column(out.schema.get_field_index("tenant"), "tenant",
                             pa.DictionaryArray.from_arrays(shifted, doubled))
    return out


def test_dictionary_encoded_tables_answer_like_plain_ones(tmp_path: Any) -> None:
    """A batch of the columnar path's tables (each its own dictionaries, one with a string twice) and records:
    one schema, the same values, identities and spend as the plain table, and one Arrow file to insert."""
    records = _records() * 3
    for i, r in enumerate(records):
        r.span_id = f"{i:016x}"
    plain = SpanTable(records_to_arrow(records))
    batch = SpanTable.concat([SpanTable(_dictionary_form(records_to_arrow(records[:7]), twice=True)),
                              (records[7:12], None), SpanTable(_dictionary_form(records_to_arrow(records[12:][::-1])))
                              .subset(list(range(len(records) - 12))[::-1])])
    assert all(pa.types.is_dictionary(batch.table.schema.field(name).type) for name in DICTIONARY_COLUMNS)
    assert batch.table.cast(plain.table.schema).equals(plain.table)
    assert batch.identity_keys() == plain.identity_keys()
    assert batch.spend_rows() == plain.spend_rows()
    assert batch.cost_by(3_600 * 10**9) == plain.cost_by(3_600 * 10**9)
    assert SpendLedger().aggregate(batch) == SpendLedger().aggregate(plain)
    assert len(batch.codes("tenant")[1]) == 2  # (t0 and t1, each once although a dictionary held them twice)
    assert batch.codes("model")[1] == plain.codes("model")[1]
    rows = [r for r in _records() if r.pricing_status != PARTIAL and abs(r.cost_pusd or 0) < 2**40] * 2  # (int64 sums)
    for r in rows:
        r.reported_cost_pusd = None  # (else counted span by span)
    dictionary_groups = SpanTable(_dictionary_form(records_to_arrow(rows), twice=True)).spend_groups()
    assert dictionary_groups and dictionary_groups == SpanTable(records_to_arrow(rows)).spend_groups()
    path = tmp_path / "batch.arrow"  # the insert's format: one dictionary per column across the chunks
    table = batch.to_arrow()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert pa.ipc.open_file(str(path)).read_all().cast(plain.table.schema).equals(plain.table)


def _state(collector: Any) -> list[Any]:
    """The collector's entries, in their order (the label folding and the series caps read the order)."""
    return [list(collector._cost.items()), [(k, list(v)) for k, v in collector._tokens.items()],
            list(collector._unpriced.items()), list(collector._disagree.items())]


def test_spend_groups_count_what_the_records_count() -> None:
    """Summed per group in the columns, entries made in the order of each group's first span: the collector ends
    in the state the records put it in, entry for entry and in the same order."""
    rng = random.Random(4)
    records = []
    for i in range(400):
        status = rng.choice([PRICED, PRICED, NO_USAGE, UNPRICED, DUPLICATE])
        records.append(span_record(
            tenant=rng.choice(["t1", "t2"]), service_name=rng.choice(["a", "b", "c"]), provider="openai",
            response_model=rng.choice(["", "gpt-4o", "gpt-4o-mini"]), request_model=rng.choice(["gpt-4o", "o3"]),
            pricing_status=status, cost_pusd=rng.randrange(10**9) if status == PRICED else None,
            usage=TokenUsage(rng.randrange(9000), rng.randrange(900), rng.randrange(9), 0, rng.randrange(3)),
            start_time_ns=1_790_000_000_000_000_000 + i))
    table = SpanTable(records_to_arrow(records))
    groups = table.spend_groups()
    assert groups is not None and 10 < len(groups) < 100
    by_records, by_groups = Metrics(), Metrics()
    by_records.spend.observe_records(records)
    by_groups.spend.observe_groups(groups)
    assert _state(by_groups.spend) == _state(by_records.spend)
    assert _state(by_groups.spend)[0], "nothing was counted"
    with_partial = _records()  # a partial price and reported costs: counted span by span instead
    assert SpanTable(records_to_arrow(with_partial)).spend_groups() is None
    assert SpanTable(records_to_arrow(records[:0])).spend_groups() == []


@pytest.mark.parametrize("sizes", [[4, 1, 8, 8], [20, 5, 8, 12, 4, 2], [300, 300], [1], [7, 9000]])
def test_group_rows_numbers_groups_by_first_appearance(sizes: list[int]) -> None:
    """The compiled one-pass grouping (a small key space) and the sort (a big one) give what ``np.unique`` gives,
    groups renumbered by first appearance; the loop as Python too."""
    rng = np.random.default_rng(len(sizes))
    for n in (1, 5, 512, 3000):
        codes = [rng.integers(0, size, n) for size in sizes]
        key = np.zeros(n, np.int64)
        for column, size in zip(codes, sizes, strict=True):
            key = key * size + column
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        groups, firsts = group_rows(codes, sizes)
        assert groups.tolist() == rank[inverse.reshape(-1)].tolist() and firsts.tolist() == first[order].tolist()
        if int(np.prod(sizes)) <= 4 * n + 4096:
            python = _first_seen.py_func(key, int(np.prod(sizes)))
            assert python[0].tolist() == groups.tolist() and python[1].tolist() == firsts.tolist()


def test_warm_up_loads_the_compiled_grouping() -> None:
    """At start the grouping's loop is compiled (or loaded from numba's cache), not left to run as Python."""
    assert warm_up() == ""
    assert _first_seen._jit is not None and _first_seen._jit is not _first_seen.py_func
