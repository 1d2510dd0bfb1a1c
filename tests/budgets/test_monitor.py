"""The background monitor against a real chDB store: anomaly scores from the hourly rollup, the
seasonal forecast fitted from history, and anomaly/unpriced events reaching a webhook sender."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest

from llm_cost_tracker.budgets import (
    AnomalyOptions,
    BudgetCollector,
    BudgetMonitor,
    BudgetService,
    parse_budgets,
)
from llm_cost_tracker.budgets._webhooks import Event, Webhook, WebhookSender
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.storage.client import connect

from .conftest import NS, USD, rec

NOW = int(datetime(2025, 6, 18, 12, 30, tzinfo=UTC).timestamp()) * NS  # a Wednesday, half past noon
H = 3600 * NS


class Collecting(WebhookSender):
    """A sender that keeps the events it is given (one webhook subscribed to everything)."""

    def __init__(self) -> None:
        super().__init__([Webhook("t", "http://127.0.0.1:9/", "0123456789abcdef")], None, threading.Lock())
        self.events: list[Event] = []

    def submit(self, event: Event) -> None:
        self.events.append(event)


def test_a_spike_is_scored_exported_and_notified_and_the_forecast_is_seasonal(store, store_settings) -> None:
    # 4 weeks of 1 USD per hour for chat-api (and half past each hour), then 40 USD in the current hour
    history = [rec(NOW - k * H, USD) for k in range(1, 4 * 168)]
    ClickHouseSink(store).write([*history, rec(NOW - NS, 40 * USD), rec(NOW - 2 * H, USD, service="search"),
                                 rec(NOW - NS, None, model="mystery-model")])
    parsed, options = parse_budgets({"budgets": [{"name": "all", "limit_usd": 10_000, "period": "month"}]})
    service = BudgetService(parsed, connect(store_settings), options=options, clock=lambda: NOW)
    sender = Collecting()
    monitor = BudgetMonitor(service, sender, AnomalyOptions(), clock=lambda: NOW)
    monitor.round()
    top = monitor.anomalies[0]
    assert top.series == ("acme", "chat-api", "gpt-4o") and top.anomalous and top.baseline_kind == "hour_of_week"
    assert top.spend_pusd == 40 * USD and top.baseline_pusd == USD
    kinds = sorted(e.kind for e in sender.events)
    assert kinds.count("anomaly") == 1 and kinds.count("unpriced") == 1
    unpriced = next(e for e in sender.events if e.kind == "unpriced")
    assert unpriced.payload["spans"] == 1 and unpriced.payload["models"] == ["mystery-model"]
    registry = CollectorRegistry()
    registry.register(BudgetCollector(service, monitor))
    text = generate_latest(registry).decode()
    assert 'llm_spend_anomaly{model="gpt-4o",service="chat-api",tenant="acme"} 1.0' in text
    # the forecast: 1 USD an hour for the rest of June after the spike, not the spike's pace
    status = service.refresh()["all"]
    hours_left = (int(datetime(2025, 7, 1, tzinfo=UTC).timestamp()) * NS - NOW) / H
    assert status.to_json()["forecast"] == "seasonal"
    assert abs(status.projected_pusd - status.spent_pusd - hours_left * USD) < 2 * USD
