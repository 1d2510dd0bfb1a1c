"""Budget spend, projection, status and advice against a real chDB store (rollups and raw table)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llm_cost_tracker.budgets import BudgetService, StoreUnavailable, TrackingQueue, parse_budgets
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.storage.client import connect

from .conftest import NS, USD, rec

NOW = int(datetime(2025, 6, 18, 12, 0, tzinfo=UTC).timestamp()) * NS  # a Wednesday
H = 3600 * NS


def service(store_settings, budgets: list[dict], now: int = NOW) -> BudgetService:
    parsed, options = parse_budgets({"budgets": budgets})
    return BudgetService(parsed, connect(store_settings), clock=lambda: now)


def test_spend_comes_from_store_plus_pending(store, store_settings) -> None:
    """Spent = rows in the store for the scope and period + spend accepted and not yet written."""
    ClickHouseSink(store).write([rec(NOW - H, 2 * USD), rec(NOW - 2 * H, USD, tenant="other"),
                                 rec(NOW - 40 * 24 * H, 100 * USD)])  # last month: outside the period
    svc = service(store_settings, [{"name": "acme", "limit_usd": 10, "scope": {"tenant": "acme"}},
                                   {"name": "all", "limit_usd": 10}])
    svc.ledger.add(svc.ledger.aggregate([rec(NOW, USD // 2)]))
    st = svc.refresh()
    assert (st["acme"].spent_pusd, st["acme"].pending_pusd) == (2 * USD + USD // 2, USD // 2)
    assert st["all"].spent_pusd == 3 * USD + USD // 2
    assert st["acme"].exact


def test_rollup_and_raw_table_agree(store, store_settings) -> None:
    """Every scope and period (including a +05:30 day) sums the same from the hourly rollup as from llm_spans."""
    records = []
    for i in range(60):
        at = NOW - i * 37 * 60 * NS  # every 37 minutes over ~37 hours
        records.append(rec(at, (i + 1) * USD // 7, tenant=("acme", "beta")[i % 2], model=("gpt-4o", "o3")[i % 3 == 0],
                           service=("chat", "search")[i % 5 == 0], attributes={"team": ("a", "b")[i % 4 == 0]}))
    ClickHouseSink(store).write(records)
    budgets = [
        {"name": "acme-day-kolkata", "limit_usd": 5, "period": "day", "timezone": "Asia/Kolkata",
         "scope": {"tenant": "acme"}, "burn_window": "90m"},
        {"name": "o3-week", "limit_usd": 5, "period": "week", "timezone": "America/New_York", "scope": {"model": "o3"}},
        {"name": "chat-month", "limit_usd": 5, "scope": {"service": ["chat"], "provider": "openai"}},
        {"name": "team-b-day", "limit_usd": 5, "period": "day", "scope": {"attributes": {"team": "b"}}},
    ]
    with_rollup = service(store_settings, budgets)
    raw = service(store_settings, budgets)
    raw._rollup = None  # force the raw table
    a, b = with_rollup.refresh(), raw.refresh()
    assert with_rollup._rollup is not None and with_rollup._rollup.table == "llm_spend_hourly"
    for name, st in a.items():
        expected = sum(r.cost_pusd for r in records
                       if st.period_start_ns <= r.start_time_ns < st.period_end_ns
                       and st.budget.scope.matches(r.tenant, r.service_name, r.provider, r.response_model, r.attributes))
        assert st.spent_pusd == b[name].spent_pusd == expected, name
        assert st.window_pusd == b[name].window_pusd, name
        assert expected > 0, name


def test_projection_and_status(store, store_settings) -> None:
    """Projected = spent + the burn window's rate over the rest of the period; status follows the thresholds."""
    day_start = NOW - 12 * H
    ClickHouseSink(store).write([rec(day_start + H, 4 * USD), rec(NOW - H, 2 * USD), rec(NOW - 30 * 60 * NS, USD)])
    svc = service(store_settings, [{"name": "d", "limit_usd": 10, "period": "day", "burn_window": "2h",
                                    "thresholds": [0.5, 0.9]}])
    st = svc.refresh()["d"]
    assert (st.period_start_ns, st.period_end_ns) == (day_start, day_start + 24 * H)
    assert st.spent_pusd == 7 * USD and st.window_pusd == 3 * USD and st.window_ns == 2 * H
    assert st.projected_pusd == 7 * USD + 3 * USD * 12 // 2  # 1.5 USD/h for the 12 hours left
    assert (st.status, st.thresholds_crossed, st.remaining_ratio) == ("warning", (0.5,), pytest.approx(0.3))
    body = st.to_json()
    assert body["period_start"] == "2025-06-18T00:00:00Z" and body["projected_usd"] == 25.0
    assert body["burn_rate_usd_per_hour"] == 1.5 and body["status"] == "warning"


def test_early_in_period_the_window_is_the_period(store, store_settings) -> None:
    """Ten minutes into a day the burn rate is the day's spend over those ten minutes."""
    day_start = NOW - 12 * H
    svc = service(store_settings, [{"name": "d", "limit_usd": 100, "period": "day"}], now=day_start + 600 * NS)
    ClickHouseSink(store).write([rec(day_start + 60 * NS, USD), rec(day_start - 60 * NS, 50 * USD)])
    st = svc.refresh()["d"]
    assert st.window_ns == 600 * NS and st.spent_pusd == USD
    assert st.projected_pusd == USD + USD * (24 * H - 600 * NS) // (600 * NS)
    assert st.status == "ok"  # status follows spend; the projection (144 USD) only forecasts
    ClickHouseSink(store).write([rec(day_start + 120 * NS, 99 * USD)])
    assert svc.refresh()["d"].status == "exceeded"


class SlowSink:
    """A real sink that pauses after each insert (the rows are in the store, the commit has not happened)."""

    def __init__(self, inner: ClickHouseSink, pause: float) -> None:
        self.inner, self.pause = inner, pause

    def write(self, records, dedup_token: str = "", columns=()) -> None:
        self.inner.write(records, dedup_token, columns)
        time.sleep(self.pause)


def test_flushes_during_reads_never_count_twice(store, store_settings, tmp_path: Path) -> None:
    """While the writer flushes batch after batch, every read sees exactly the accepted spend."""
    svc = service(store_settings, [{"name": "all", "limit_usd": 1000}], now=NOW + H)
    queue = TrackingQueue(MemoryQueue(100_000), svc.ledger)
    writer = BatchWriter(queue, SlowSink(ClickHouseSink(store), 0.02), ParkingLot(tmp_path / "parked"),
                         is_retriable, BatchPolicy(max_records=7, max_age_seconds=0.01), Metrics())
    total = 0
    for i in range(40):
        chunk = [rec(NOW - i * NS, 1_000 + i), rec(NOW - i * NS, 3 * USD + i)]
        total += sum(r.cost_pusd for r in chunk)
        queue.publish(chunk)
    reads: list[tuple[int, bool]] = []
    writer.start()
    try:
        while queue.depth:
            st = svc.refresh()["all"]
            reads.append((st.spent_pusd, st.exact))
    finally:
        queue.close()
        assert writer.join(30)
    st = svc.refresh()["all"]
    reads.append((st.spent_pusd, st.exact))
    assert set(reads) == {(total, True)}, f"{len(reads)} reads, distinct values {sorted(set(reads))[:5]}"
    assert svc.ledger.snapshot() == {} and svc.ledger.writes >= 10
    # At least one read ran while batches were still queued (the loop only reads then). How many fit
    # between flushes depends on the machine: the writer and the reads share one lock, unfairly.
    assert len(reads) >= 2


class BrokenClient:
    def query(self, sql: str):
        raise ConnectionError("connection refused")


def test_store_down_raises_store_unavailable() -> None:
    """A failing store query surfaces as StoreUnavailable (the API answers 503)."""
    parsed, _ = parse_budgets({"budgets": [{"name": "x", "limit_usd": 1}]})
    svc = BudgetService(parsed, BrokenClient(), clock=lambda: NOW)
    with pytest.raises(StoreUnavailable, match="connection refused"):
        svc.statuses()
    assert svc.refresh_errors == 1


POLICY = {"gpt-4o": ["gpt-4o-mini", "gpt-4.1-nano"]}


@pytest.mark.parametrize(("spent_usd", "expected", "step"), [
    (10, "gpt-4o", 0), (55, "gpt-4o-mini", 1), (85, "gpt-4.1-nano", 2), (150, "gpt-4.1-nano", 2)])
def test_advice_steps_down_per_threshold(store, store_settings, spent_usd, expected, step) -> None:
    """Each threshold crossed moves the call one step down the model's downgrade list (the last step stays)."""
    ClickHouseSink(store).write([rec(NOW - H, spent_usd * USD)])
    svc = service(store_settings, [{"name": "acme", "limit_usd": 100, "scope": {"tenant": "acme"}, "downgrade": POLICY}])
    advice = svc.advise("gpt-4o", tenant="acme", service="chat-api")
    assert (advice["model"], advice["downgraded"], advice["budgets"][0]["downgrade_step"]) == (expected, step > 0, step)
    assert advice["budget_exceeded"] is (spent_usd >= 100)
    assert "acme" in advice["reason"] and expected in advice["reason"]


def test_advice_uses_the_budget_under_most_pressure(store, store_settings) -> None:
    """With several covering budgets the deepest downgrade wins; uncovered calls and models without a policy keep the model."""
    ClickHouseSink(store).write([rec(NOW - H, 60 * USD, service="search")])
    svc = service(store_settings, [
        {"name": "acme", "limit_usd": 1000, "scope": {"tenant": "acme"}, "downgrade": POLICY},
        {"name": "search", "limit_usd": 70, "scope": {"service": "search"}, "downgrade": POLICY,
         "downgrade_from": 0.8},
        {"name": "beta", "limit_usd": 1, "scope": {"tenant": "beta"}, "downgrade": POLICY},
    ])
    advice = svc.advise("gpt-4o", tenant="acme", service="search")
    assert advice["model"] == "gpt-4o-mini" and "'search'" in advice["reason"]
    assert [b["name"] for b in advice["budgets"]] == ["search", "acme"]
    assert svc.advise("gpt-4o", tenant="zeta", service="chat")["reason"].startswith("no budget covers")
    other = svc.advise("claude-sonnet-4", tenant="acme", service="search")
    assert other["model"] == "claude-sonnet-4" and "no downgrade policy" in other["reason"]


def test_stuck_write_gives_an_upper_bound(store, store_settings) -> None:
    """While a write holds the gate past the timeout, reads go ahead, flagged inexact, and miss nothing."""
    svc = service(store_settings, [{"name": "all", "limit_usd": 10}])
    queue = TrackingQueue(MemoryQueue(10), svc.ledger)
    queue.publish([rec(NOW - H, USD)])
    batch = queue.take(10, 0.0)  # the writer took it and is "retrying a failing store"
    original = svc.ledger.read
    svc.ledger.read = lambda query, timeout=2.0: original(query, timeout=0.05)  # type: ignore[method-assign]
    st = svc.refresh()["all"]
    assert (st.spent_pusd, st.exact) == (USD, False)
    ClickHouseSink(store).write(batch.records)
    assert svc.refresh()["all"].spent_pusd == 2 * USD  # landed but not committed yet: counted twice, never lost
    queue.commit(batch)
    st = svc.refresh()["all"]
    assert (st.spent_pusd, st.exact) == (USD, True)
