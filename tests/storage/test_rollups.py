"""Rollups kept by materialized views: exact, deduplicated by insert token, late spans in their bucket."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from llm_cost_tracker.sinks.clickhouse import ClickHouseSink

from .conftest import span

T0 = dt.datetime(2026, 3, 10, 14, 5, tzinfo=dt.UTC).timestamp()


def sums(store, table: str) -> tuple:
    return store.query(f"SELECT toString(sum(cost_usd)), sum(requests), sum(input_tokens) FROM {table}").result_rows[0]


def raw_sums(store) -> tuple:
    return store.query("SELECT toString(sum(cost_usd)), count(), sum(input_tokens) FROM llm_spans").result_rows[0]


def test_same_token_twice_counts_once_in_raw_and_rollups(store) -> None:
    """A batch inserted twice with the same dedup token is stored once in llm_spans and in both rollups."""
    sink = ClickHouseSink(store)
    batch = [span(T0 + i * 60, cost=1_000_000_000 + i) for i in range(50)]
    sink.write(batch, dedup_token="topic-0:0-49")
    sink.write(batch, dedup_token="topic-0:0-49")
    expected = ("0.050000001225", 50, 5000)
    assert raw_sums(store) == expected
    assert sums(store, "llm_spend_hourly") == expected
    assert sums(store, "llm_spend_daily") == expected
    sink.write(batch, dedup_token="topic-0:50-99")  # a different token is a different batch
    assert sums(store, "llm_spend_daily")[1] == 100


def test_retry_after_a_failure_inside_a_view_completes_the_rollups_once(store) -> None:
    """If the raw rows were stored but a view failed, the retry fills the rollup and a third try adds nothing."""
    sink = ClickHouseSink(store)
    batch = [span(T0, cost=7), span(T0 + 1, cost=8)]
    store.command("ALTER TABLE llm_spend_daily ADD CONSTRAINT fail_once CHECK requests > 100")
    with pytest.raises(Exception, match="fail_once"):
        sink.write(batch, dedup_token="b1")
    assert raw_sums(store)[1] == 2  # the raw part was committed before the view failed
    store.command("ALTER TABLE llm_spend_daily DROP CONSTRAINT fail_once")
    sink.write(batch, dedup_token="b1")
    sink.write(batch, dedup_token="b1")
    assert raw_sums(store) == ("0.000000000015", 2, 200)
    assert sums(store, "llm_spend_daily") == ("0.000000000015", 2, 200)
    assert sums(store, "llm_spend_hourly") == ("0.000000000015", 2, 200)


def test_late_span_lands_in_its_own_hour_and_day(store) -> None:
    """A span arriving after its hour was rolled up adds to that hour's and day's bucket, exactly."""
    sink = ClickHouseSink(store)
    sink.write([span(T0, cost=1), span(T0 + 3600, cost=2)])
    sink.write([span(T0 + 30, cost=10**12 + 3)])  # late: same hour as the first span
    store.command("OPTIMIZE TABLE llm_spend_hourly FINAL")
    rows = store.query(
        "SELECT hour, sum(requests), toString(sum(cost_usd)) FROM llm_spend_hourly GROUP BY hour ORDER BY hour"
    ).result_rows
    assert [(h.hour, n, c) for h, n, c in rows] == [(14, 2, "1.000000000004"), (15, 1, "0.000000000002")]
    day = store.query("SELECT day, sum(cost_usd) FROM llm_spend_daily GROUP BY day").result_rows
    assert day == [(dt.date(2026, 3, 10), Decimal("1.000000000006"))]


def test_rollup_columns_match_the_raw_table(store) -> None:
    """Every rollup measure equals the same aggregate over llm_spans, unpriced spans included."""
    sink = ClickHouseSink(store)
    sink.write([
        span(T0, cost=5_000_000, tokens=(1000, 200, 600, 100, 50), savings=1_234_567, duration_ms=100),
        span(T0 + 5, cost=None, model="mystery-1", tokens=(300, 30, 0, 0, 0), duration_ms=300),
        span(T0 + 9, cost=2_000_000, tokens=(10, 5, 0, 0, 0), status=2, duration_ms=200),
    ])
    got = store.query(
        "SELECT sum(requests), sum(error_requests), sum(unpriced_requests), sum(input_tokens), sum(output_tokens), "
        "sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(priced_output_tokens), "
        "sum(unpriced_input_tokens), sum(unpriced_output_tokens), toString(sum(cost_usd)), "
        "toString(sum(cache_savings_usd)), round(quantileTDigestMerge(0.5)(latency_ms)) FROM llm_spend_hourly"
    ).result_rows[0]
    assert got == (3, 1, 1, 1310, 235, 600, 100, 50, 205, 300, 30, "0.000007", "0.000001234567", 200.0)
    models = store.query("SELECT DISTINCT model FROM llm_spend_daily ORDER BY model").result_rows
    assert models == [("gpt-4o",), ("mystery-1",)]


def test_default_columns_are_filled(store) -> None:
    """``model`` falls back to the request model and ``conversation_id`` comes from the span attribute."""
    record = span(T0, attributes={"gen_ai.conversation.id": "conv-9"})
    record.response_model = ""
    ClickHouseSink(store).write([record])
    assert store.query("SELECT model, conversation_id FROM llm_spans").result_rows == [("gpt-4o", "conv-9")]
