"""Span identity in the store: a span written again is not stored, rolled up or counted again (issue 14)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.identity import FirstArrivals, time_ranges
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.storage.migrate import bundled_migrations, migrate
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import SpanTable, dictionary_schema

from .conftest import span

T0 = dt.datetime(2026, 3, 10, 14, 5, tzinfo=dt.UTC).timestamp()


def duplicate(record: Any) -> Any:
    """``record`` as the call-identity stage marks a second instrumentation's copy of a call."""
    return dataclasses.replace(record, pricing_status="duplicate")


def totals(store: Any) -> dict[str, tuple[Any, ...]]:
    """(requests, unpriced requests, input tokens, cost) of the raw table and both rollups."""
    raw = store.query("SELECT count(), countIf(cost_usd IS NULL), sum(input_tokens), toString(sum(cost_usd)) "
                      "FROM llm_spans WHERE pricing_status != 'duplicate'").result_rows[0]
    out = {"llm_spans": tuple(raw)}
    for table in ("llm_spend_hourly", "llm_spend_daily"):
        out[table] = tuple(store.query(f"SELECT sum(requests), sum(unpriced_requests), sum(input_tokens), "
                                       f"toString(sum(cost_usd)) FROM {table}").result_rows[0])
    return out


def metric_cost_pusd(metrics: Metrics) -> int:
    return round(sum(s.value for m in metrics.spend.collect() if m.name == "llm_cost_usd" for s in m.samples)
                 * 10**12)


def test_duplicate_rows_are_kept_raw_but_not_rolled_up(store: Any) -> None:
    """A row marked pricing_status='duplicate' is in llm_spans but counts in no rollup, not even as unpriced."""
    sink = ClickHouseSink(store)
    first = span(T0, cost=5_000_000)
    again = duplicate(span(T0 + 1, cost=None))  # a second instrumentation's copy of the call
    sink.write([first, again])
    assert store.query("SELECT count() FROM llm_spans").result_rows[0][0] == 2
    t = totals(store)
    assert t["llm_spans"] == (1, 0, 100, "0.000005")
    assert t["llm_spend_hourly"] == t["llm_spend_daily"] == t["llm_spans"]


def test_migration_6_moves_an_existing_store_to_first_arrival_rollups(store_settings: Any) -> None:
    """A store built by migrations 1-5 keeps its rollup rows and stops rolling up duplicates after migrate."""
    from llm_cost_tracker.storage.client import connect
    from llm_cost_tracker.storage.migrate import MIGRATIONS_TABLE, migrations_table_ddl

    client = connect(store_settings)
    try:
        client.command(migrations_table_ddl())
        for m in bundled_migrations():
            if m.version <= 5:
                for statement in m.statements():
                    client.command(statement)
                client.insert(MIGRATIONS_TABLE, [[m.version, m.name, m.checksum]],
                              column_names=["version", "name", "checksum"])
        sink = ClickHouseSink(client)
        sink.write([span(T0, cost=7)])
        sink.write([duplicate(span(T0, cost=None))])  # counted by the old views
        assert totals(client)["llm_spend_daily"][:2] == (2, 1)
        assert [m.version for m in migrate(client)] == [m.version for m in bundled_migrations() if m.version > 5]
        sink.write([duplicate(span(T0, cost=None))])  # not by the new ones
        sink.write([span(T0, cost=11)])
        assert totals(client)["llm_spend_daily"][:2] == (3, 1)
        assert totals(client)["llm_spend_hourly"][:2] == (3, 1)
        assert migrate(client) == []
    finally:
        client.command(f"DROP DATABASE IF EXISTS `{store_settings.clickhouse_database}` SYNC")
        client.close()


@pytest.mark.parametrize("route", ["table", "bound"])
def test_first_arrivals_leaves_out_stored_and_repeated_spans(store: Any, route: str) -> None:
    """Spans already stored, and a second copy inside the batch, are left out; another tenant's ids are not
    (both lookup routes: the embedded store's file of the batch's ids, and a server's bound id lists)."""
    sink = ClickHouseSink(store)
    stored = [span(T0 + i, cost=10 + i) for i in range(5)]
    sink.write(stored)
    new = [span(T0 + 100 + i, cost=100) for i in range(3)]
    other_tenant = dataclasses.replace(stored[0], tenant="beta")
    later_start = dataclasses.replace(stored[1], start_time_ns=stored[1].start_time_ns + 1)
    batch = [*stored, new[0], new[0], new[1], other_tenant, new[2], stored[2], later_start]
    first_arrivals = FirstArrivals(store)
    assert first_arrivals.route == "table"  # chDB
    first_arrivals.route = route
    fresh, repeats = first_arrivals(batch)
    assert fresh == [new[0], new[1], other_tenant, new[2], later_start]
    assert repeats == 7
    assert first_arrivals([]) == ([], 0)
    assert first_arrivals(list(reversed(stored))) == ([], 5)  # each lookup reads this batch's ids only


def _columnar(records: list[Any]) -> SpanTable:
    """``records`` as the columnar path holds them: names and map keys dictionary-encoded."""
    table = records_to_arrow(records)
    return SpanTable(table.cast(dictionary_schema(table.schema)))


def test_first_arrivals_of_a_table_decide_as_for_records(store: Any) -> None:
    """A table (the columnar path's batch) is decided on its columns while no span can be a copy: the batch
    comes back as it is when its spans are new, also beside stored spans of the same traces; a stored copy or a
    span twice in it is left out exactly as from the same records."""
    sink = ClickHouseSink(store)
    stored = [span(T0 + i, cost=10 + i, trace=f"{7:032x}") for i in range(4)]
    sink.write(stored)
    first_arrivals = FirstArrivals(store)
    new = [span(T0 + 10 + i, cost=100, trace=f"{7:032x}" if i % 2 else "") for i in range(6)]
    table = _columnar(new)
    assert first_arrivals(table) == (table, 0)  # (the same object: nothing was taken out)
    for batch in ([*new, stored[1]], [*new, new[2]], [stored[3], *new, dataclasses.replace(stored[0], tenant="beta")]):
        kept, repeats = first_arrivals(_columnar(batch))
        want, want_repeats = first_arrivals(batch)
        assert isinstance(kept, SpanTable) and repeats == want_repeats == 1
        assert kept.identity_keys() == [(r.tenant, r.trace_id, r.span_id, r.start_time_ns) for r in want]


def test_the_embedded_lookup_leaves_no_file_behind(store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's ids go to the lookup in a temporary Arrow file, removed after the query, failed or not."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stored = span(T0, cost=1)
    ClickHouseSink(store).write([stored])
    first_arrivals = FirstArrivals(store)
    assert first_arrivals([stored, span(T0 + 1, cost=1)])[1] == 1
    assert list(tmp_path.iterdir()) == []
    broken = FirstArrivals(store, table="no_such_table")
    with pytest.raises(Exception, match="no_such_table"):
        broken.stored([("t", "0" * 32, "0" * 16, 0)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["table", "bound"])
def test_copies_far_apart_in_time_are_all_found(store: Any, route: str) -> None:
    """A batch whose spans started hours and days apart (a client's clock off, a drained retry queue) is
    looked up as separate time ranges: copies in each range are left out, and a span stored between
    the ranges with the same ids but another start time is not taken for one of them."""
    sink = ClickHouseSink(store)
    starts = [T0, T0 + 0.5, T0 + 3600, T0 + 3600.25, T0 + 86_400 * 3]
    stored = [span(at, cost=10) for at in starts]
    between = dataclasses.replace(stored[0], start_time_ns=int((T0 + 1800) * 10**9))  # other start: another span
    sink.write([*stored, between])
    new = [span(at + 10, cost=20) for at in starts]
    moved = dataclasses.replace(stored[1], start_time_ns=stored[1].start_time_ns + 7 * 10**9)
    first_arrivals = FirstArrivals(store)
    first_arrivals.route = route
    fresh, repeats = first_arrivals([*stored, *new, moved])
    assert fresh == [*new, moved]
    assert repeats == len(stored)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=60), st.integers(1, 6))
def test_time_ranges_cover_every_start_and_split_at_the_widest_gaps(times: list[int], most: int) -> None:
    gap = 10**11
    ranges = time_ranges(times, gap_ns=gap, most=most)
    assert 1 <= len(ranges) <= most
    assert all(lo <= hi for lo, hi in ranges)
    assert all(a[1] < b[0] for a, b in pairwise(ranges))  # sorted, disjoint
    assert all(any(lo <= t <= hi for lo, hi in ranges) for t in times)
    assert {lo for lo, _ in ranges} <= set(times) and {hi for _, hi in ranges} <= set(times)  # tight
    wide = sorted(b - a for a, b in pairwise(sorted(set(times))) if b - a > gap)
    assert len(ranges) == min(len(wide), most - 1) + 1
    inner = [b[0] - a[1] for a, b in pairwise(ranges)]
    assert sorted(inner) == wide[len(wide) - len(inner):]  # the widest gaps are the ones left open


def _writer(store: Any, queue: MemoryQueue, metrics: Metrics, tmp_path: Path, sink: Any = None) -> BatchWriter:
    return BatchWriter(queue, sink or ClickHouseSink(store), ParkingLot(tmp_path / "parked"), is_retriable,
                       BatchPolicy(max_records=4, max_age_seconds=0.05, retry_initial_seconds=0.01), metrics,
                       first_arrivals=FirstArrivals(store))


def test_spans_published_three_times_are_stored_rolled_up_and_counted_once(store: Any, tmp_path: Path) -> None:
    """The same spans queued three times (a retried Export) give one row each, and rollups and metrics agree."""
    records = [span(T0 + i * 600, cost=1_000_000_007 + i, tokens=(10 + i, 2, 0, 0, 0)) for i in range(6)]
    records.append(span(T0, cost=None))
    queue, metrics = MemoryQueue(1000), Metrics()
    writer = _writer(store, queue, metrics, tmp_path)
    writer.start()
    for _ in range(3):
        queue.publish(list(records))
    queue.close()
    assert writer.join(60)
    cost = sum(r.cost_pusd or 0 for r in records)
    t = totals(store)
    assert t["llm_spans"] == (7, 1, 175, str(Decimal(cost) / 10**12))
    assert t["llm_spend_hourly"] == t["llm_spend_daily"] == t["llm_spans"]
    assert metric_cost_pusd(metrics) == cost
    assert metrics.rows_written._value.get() == 7
    assert metrics.spans_deduplicated._value.get() == 14


class FailsAfterStoring:
    """A sink whose first insert stores the rows and then fails (a lost response)."""

    def __init__(self, inner: ClickHouseSink) -> None:
        self.inner = inner
        self.calls = 0

    def write(self, records: Any, dedup_token: str = "", columns: Any = ()) -> None:
        self.calls += 1
        self.inner.write(records, dedup_token, columns)
        if self.calls == 1:
            raise ConnectionError("response lost after the insert")


def test_retry_of_a_write_that_landed_is_counted_once(store: Any, tmp_path: Path) -> None:
    """A write that stored its rows and then failed is retried as the same batch: rows and metrics count once."""
    records = [span(T0 + i, cost=3) for i in range(3)]
    queue, metrics = MemoryQueue(100), Metrics()
    sink = FailsAfterStoring(ClickHouseSink(store))
    writer = _writer(store, queue, metrics, tmp_path, sink)
    writer.start()
    queue.publish(records)
    queue.close()
    assert writer.join(60)
    assert sink.calls == 2
    t = totals(store)
    assert t["llm_spans"] == (3, 0, 300, "0.000000000009")
    assert t["llm_spend_hourly"] == t["llm_spend_daily"] == t["llm_spans"]
    assert metric_cost_pusd(metrics) == 9
    assert metrics.rows_written._value.get() == 3


@pytest.mark.parametrize("copies", [1, 2])
def test_unpriced_copies_count_once_as_unpriced(store: Any, tmp_path: Path, copies: int) -> None:
    """An unpriced span sent again is one unpriced request and one llm_unpriced_spans_total."""
    queue, metrics = MemoryQueue(100), Metrics()
    writer = _writer(store, queue, metrics, tmp_path)
    writer.start()
    record = span(T0, cost=None)
    for _ in range(copies):
        queue.publish([record])
    queue.close()
    assert writer.join(60)
    assert totals(store)["llm_spend_daily"][:2] == (1, 1)
    unpriced = [s.value for m in metrics.spend.collect() if m.name == "llm_unpriced_spans" for s in m.samples]
    assert unpriced == [1]


def _rollup_views(store: Any, present: bool) -> None:
    """Drop the rollup views, or create them again, as migration 6 defines them."""
    sixth = next(m for m in bundled_migrations() if m.version == 6)
    for statement in sixth.statements():
        if statement.lstrip().upper().startswith("DROP") != present:
            store.command(statement)


@pytest.mark.parametrize("route", ["arrow", "protobuf"])
def test_batch_stored_raw_but_not_rolled_up_is_completed_by_its_redelivery(
        store: Any, tmp_path: Path, route: str) -> None:
    """A writer killed after llm_spans took a batch and before the rollup views did: the same batch delivered
    again (same token) completes the rollups without a second raw row, while another batch holding the same
    spans is still left out."""
    records = [span(T0 + i * 60, cost=1_000 + i) for i in range(5)]
    batch: Any = records
    if route == "protobuf":
        from llm_cost_tracker.queue import kafka_codec

        batch = kafka_codec.WireBatch()
        batch.add(kafka_codec.encode_batch(kafka_codec.encode_many(records)), kafka_codec.batch_headers(len(records)))
    sink = ClickHouseSink(store)
    token = "llm-spans:0:100-104:abc"
    _rollup_views(store, present=False)  # the moment of the kill: raw rows stored, views not fed
    sink.write(batch, token)
    _rollup_views(store, present=True)
    assert totals(store)["llm_spend_daily"] == (0, 0, 0, "0")
    first_arrivals = FirstArrivals(store)
    again, repeats = first_arrivals(batch, token)  # redelivered after the restart: same offsets, same token
    assert repeats == 0 and len(again) == 5
    sink.write(again, token)
    other, repeats = first_arrivals(batch, "llm-spans:0:200-204:def")  # the same spans in another batch
    assert repeats == 5 and len(other) == 0
    cost = sum(r.cost_pusd or 0 for r in records)
    t = totals(store)
    assert t["llm_spans"] == (5, 0, 500, format(Decimal(cost) / 10**12, "f"))
    assert t["llm_spend_hourly"] == t["llm_spend_daily"] == t["llm_spans"]
    assert store.query("SELECT uniqExact(insert_token), min(insert_token) > 0 FROM llm_spans").result_rows == [(1, 1)]
