"""``report``: spend from the rollups, grouped, windowed, per tenant, as a table, JSON or CSV."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from llm_cost_tracker.cli import main
from llm_cost_tracker.report import ReportQuery, parse_time

NOW = dt.datetime(2026, 5, 20, 12, 30, tzinfo=dt.UTC)


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_parse_time_accepts_durations_dates_and_iso_times() -> None:
    """Durations count back from now; dates and naive times are UTC."""
    assert parse_time("90m", NOW) == NOW - dt.timedelta(minutes=90)
    assert parse_time("2026-05-01", NOW) == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert parse_time("2026-05-01T10:00+02:00", NOW) == dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_time("yesterday", NOW)


def test_whole_days_read_the_daily_rollup_otherwise_hourly() -> None:
    """A window of whole days reads llm_spend_daily; any other window reads llm_spend_hourly."""
    assert ReportQuery("model", dt.datetime(2026, 5, 1, tzinfo=dt.UTC)).table == "llm_spend_daily"
    assert ReportQuery("model", NOW - dt.timedelta(hours=24)).table == "llm_spend_hourly"
    with pytest.raises(ValueError):
        ReportQuery("color", NOW).sql()


@pytest.mark.parametrize("hourly", [False, True])
def test_report_by_model_this_month(loaded, hourly: bool) -> None:
    """Spend by model this month, most expensive first, equal from either rollup."""
    store, now = loaded
    since = month_start(now) + (dt.timedelta(seconds=1) if hourly else dt.timedelta(0))
    query = ReportQuery("model", since)
    assert query.table == ("llm_spend_hourly" if hourly else "llm_spend_daily")
    sql, params = query.sql()
    result = store.query(sql, parameters=params)
    assert result.column_names[:4] == ("model", "requests", "cost_usd", "cache_savings_usd")
    assert [r[:4] for r in result.result_rows] == [
        ("gpt-4o", 3, Decimal("0.53"), Decimal("0.0005")),
        ("claude-sonnet-4", 1, Decimal("0.04"), Decimal("0.0027")),
        ("mystery-1", 2, Decimal("0"), Decimal("0")),
    ]
    assert result.result_rows[2][4] == 2  # unpriced_requests


def test_report_tenant_filter_and_until(loaded) -> None:
    """--tenant keeps one tenant; --until excludes the buckets from that instant on."""
    store, now = loaded
    start = month_start(now) - dt.timedelta(days=1)
    sql, params = ReportQuery("tenant", start, month_start(now)).sql()
    assert store.query(sql, parameters=params).result_rows[0][:3] == ("globex", 1, Decimal("2"))
    sql, params = ReportQuery("service", start, None, "acme").sql()
    rows = store.query(sql, parameters=params).result_rows
    assert [r[:3] for r in rows] == [("chat-api", 4, Decimal("1.03")), ("search", 1, Decimal("0.04"))]
    sql, params = ReportQuery("day", start, None, "acme").sql()
    days = store.query(sql, parameters=params).result_rows
    assert [d[0] for d in days] == sorted(d[0] for d in days) and len(days) == 2


def test_cli_report_json_is_stable(loaded, store_settings, monkeypatch, capsys) -> None:
    """``report --format json`` prints one object per group with fixed keys and exact decimal strings."""
    store, now = loaded
    monkeypatch.setenv("LCT_CLICKHOUSE_DATABASE", store_settings.clickhouse_database)
    since = month_start(now).date().isoformat()
    assert main(["report", "--by", "provider", "--since", since, "--format", "json",
                 "--data-dir", store_settings.data_dir]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert list(rows[0]) == ["provider", "requests", "cost_usd", "cache_savings_usd", "unpriced_requests",
                             "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                             "reasoning_tokens"]
    assert [(r["provider"], r["cost_usd"]) for r in rows] == [("openai", "0.53"), ("anthropic", "0.04")]
    assert main(["report", "--by", "tenant", "--since", since, "--tenant", "acme",
                 "--data-dir", store_settings.data_dir]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["tenant", "requests", "cost_usd", "cache_savings_usd", "unpriced_requests",
                                "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                                "reasoning_tokens"]
    assert table[2].split()[:3] == ["acme", "4", "0.07"] and table[-1] == "(1 row)"
    assert store.query("SELECT count() FROM llm_spans").result_rows[0][0] == 8  # fixture client still usable
