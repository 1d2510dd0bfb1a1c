"""``reprice``: stored costs and rollups follow a price correction, set-wise, with an audit trail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.storage.reprice import reprice, resume
from llm_cost_tracker.transforms.price import Price
from llm_cost_tracker.types import TokenUsage

from .conftest import span

T0 = dt.datetime(2026, 3, 10, 14, 5, tzinfo=dt.UTC)
NS = 10**9


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.load()


def list_price(catalog: PriceCatalog, model: str, at: dt.datetime, tokens: tuple[int, ...]) -> int:
    quote = catalog.quote("openai", model, int(at.timestamp()) * NS, TokenUsage(*tokens))
    assert quote is not None
    return quote.cost_pusd


def rollups_match_raw(store) -> None:
    for table, bucket in (("llm_spend_hourly", "toStartOfHour(toDateTime(timestamp, 'UTC'))"),
                          ("llm_spend_daily", "toDate(timestamp, 'UTC')")):
        key = "hour" if table.endswith("hourly") else "day"
        rollup = store.query(
            f"SELECT {key}, model, sum(requests), sum(unpriced_requests), sum(priced_output_tokens), "
            f"sum(unpriced_input_tokens), sum(cost_usd), sum(cache_savings_usd) FROM {table} "
            f"GROUP BY {key}, model ORDER BY {key}, model").result_rows
        raw = store.query(
            f"SELECT {bucket} AS b, model, count(), countIf(cost_usd IS NULL), sumIf(output_tokens, cost_usd IS NOT NULL), "
            "sumIf(input_tokens, cost_usd IS NULL), sum(ifNull(cost_usd, 0)), sum(ifNull(cache_savings_usd, 0)) "
            "FROM llm_spans GROUP BY b, model ORDER BY b, model").result_rows
        assert rollup == raw, table


def test_reprice_updates_spans_rollups_and_audit(store, catalog) -> None:
    """Mispriced spans since the date get catalog prices in llm_spans and the rollups; the audit keeps both."""
    sink = ClickHouseSink(store)
    old = span(T0.timestamp() - 86400 * 30, cost=1, model="gpt-4o")  # before --since: untouched
    wrong = [span(T0.timestamp() + i * 3600, cost=123, model="gpt-4o", tokens=(1000, 100, 400, 0, 0))
             for i in range(3)]
    unknown_then = span(T0.timestamp() + 60, cost=None, model="gpt-4o-mini", tokens=(2000, 300, 0, 0, 0))
    sink.write([old, *wrong, unknown_then], dedup_token="x")
    sink.write([wrong[0]])  # stored twice (no token): both rows are repriced, the rollups count both
    result = reprice(store, Price(lambda: catalog), dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
    assert (result.spans, result.changed) == (4, 4)
    expected = list_price(catalog, "gpt-4o", T0, (1000, 100, 400, 0, 0))
    rows = store.query("SELECT span_id, cost_usd, pricing_status, price_version != '' FROM llm_spans "
                       "WHERE model = 'gpt-4o' AND timestamp >= '2026-03-10' ORDER BY span_id").result_rows
    assert {r[1] for r in rows} == {Decimal(expected) / 10**12} and len(rows) == 4
    assert all(r[2] == "priced" and r[3] for r in rows)
    mini = store.query("SELECT cost_usd, cache_savings_usd FROM llm_spans WHERE model = 'gpt-4o-mini'").result_rows
    assert mini == [(Decimal(list_price(catalog, "gpt-4o-mini", T0, (2000, 300, 0, 0, 0))) / 10**12, Decimal(0))]
    assert store.query("SELECT cost_usd FROM llm_spans WHERE span_id = {s:String}",
                       parameters={"s": old.span_id}).result_rows == [(Decimal("0.000000000001"),)]
    rollups_match_raw(store)
    savings = store.query("SELECT sum(cache_savings_usd) FROM llm_spend_daily").result_rows[0][0]
    assert savings > 0  # cache reads of gpt-4o now valued at the input rate
    audit = store.query("SELECT count(), sum(copies), countIf(old_cost_usd IS NULL) FROM reprice_audit "
                        "WHERE run_id = {r:String}", parameters={"r": result.run_id}).result_rows[0]
    assert audit == (4, 5, 1)
    delta = (4 * expected + list_price(catalog, "gpt-4o-mini", T0, (2000, 300, 0, 0, 0)) - 4 * 123)
    assert result.cost_delta_usd == Decimal(delta) / 10**12
    status = store.query("SELECT argMax(status, at), argMax(changed, at) FROM reprice_runs WHERE run_id = {r:String}",
                         parameters={"r": result.run_id}).result_rows
    assert status == [("done", 4)]
    again = reprice(store, Price(lambda: catalog), dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert again.changed == 0
    rollups_match_raw(store)


def test_model_filter_and_dry_run(store, catalog) -> None:
    """--model limits the run to one model; a dry run reports the change and writes nothing."""
    sink = ClickHouseSink(store)
    sink.write([span(T0.timestamp(), cost=5, model="gpt-4o"), span(T0.timestamp(), cost=5, model="gpt-4o-mini")])
    dry = reprice(store, Price(lambda: catalog), T0 - dt.timedelta(days=1), "gpt-4o-mini", dry_run=True)
    assert (dry.spans, dry.changed, dry.dry_run) == (1, 1, True)
    assert store.query("SELECT count() FROM reprice_audit").result_rows == [(0,)]
    assert store.query("SELECT count() FROM llm_spans WHERE cost_usd = 0.000000000005").result_rows == [(2,)]
    done = reprice(store, Price(lambda: catalog), T0 - dt.timedelta(days=1), "gpt-4o-mini")
    assert done.changed == 1
    assert store.query("SELECT model FROM llm_spans WHERE cost_usd = 0.000000000005").result_rows == [("gpt-4o",)]
    rollups_match_raw(store)


def test_an_interrupted_run_is_finished_once(store, catalog) -> None:
    """A run stopped after its audit is completed by resume(), and completing it again changes nothing."""
    from llm_cost_tracker.storage import reprice as module

    ClickHouseSink(store).write([span(T0.timestamp(), cost=5, model="gpt-4o")])
    original = module._apply
    module._apply = lambda client, run_id: (_ for _ in ()).throw(RuntimeError("killed"))
    try:
        with pytest.raises(RuntimeError):
            reprice(store, Price(lambda: catalog), T0 - dt.timedelta(days=1))
    finally:
        module._apply = original
    assert store.query("SELECT sum(cost_usd) FROM llm_spend_daily").result_rows == [(Decimal("0.000000000005"),)]
    finished = resume(store)
    assert len(finished) == 1
    rollups_match_raw(store)
    module._apply(store, finished[0])  # applying the same audited run twice: mutation and deltas are idempotent
    rollups_match_raw(store)
    assert resume(store) == []


def test_cli_reprice(store, store_settings, monkeypatch, capsys) -> None:
    """``reprice --since DATE --model M`` prints the per-model change and leaves the store consistent."""
    from llm_cost_tracker.cli import main

    ClickHouseSink(store).write([span(T0.timestamp(), cost=5, model="gpt-4o"), span(T0.timestamp(), cost=5, model="o1")])
    monkeypatch.setenv("LCT_CLICKHOUSE_DATABASE", store_settings.clickhouse_database)
    assert main(["reprice", "--since", "2026-03-01", "--model", "gpt-4o", "--dry-run",
                 "--data-dir", store_settings.data_dir]) == 0
    assert "1 would change" in capsys.readouterr().err
    assert main(["reprice", "--since", "2026-03-01", "--model", "gpt-4o", "--format", "csv",
                 "--data-dir", store_settings.data_dir]) == 0
    captured = capsys.readouterr()
    assert "1 changed" in captured.err
    assert captured.out.splitlines()[0] == "model,spans,old_cost_usd,new_cost_usd,delta_usd"
    assert captured.out.splitlines()[1].startswith("gpt-4o,1,0.000000000005,")
    rollups_match_raw(store)
