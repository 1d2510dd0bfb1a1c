"""Webhook delivery (signature, retries with backoff, dedup kept in the store) and the hour-of-week models."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llm_cost_tracker.budgets import BudgetConfigError, parse_budgets
from llm_cost_tracker.budgets._config import parse_anomalies
from llm_cost_tracker.budgets._seasonal import (
    HOUR_NS,
    HOURS_PER_WEEK,
    AnomalyOptions,
    baseline,
    fit_seasonal,
    score_hour,
)
from llm_cost_tracker.budgets._webhooks import Event, Webhook, WebhookSender, parse_webhooks
from llm_cost_tracker.storage.client import connect

from .conftest import USD

SECRET = "0123456789abcdef-secret"


class FlakyReceiver:
    """Answers 500 to the first ``failures`` posts, then 204; keeps what it got and when."""

    def __init__(self, failures: int) -> None:
        self.got: list[tuple[float, dict[str, str], bytes]] = []
        got, left = self.got, [failures]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if left[0] > 0 else 204)
                left[0] -= 1
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def test_delivery_is_retried_signed_and_not_repeated_after_a_restart(store, store_settings) -> None:
    receiver = FlakyReceiver(failures=2)
    hook = Webhook("ops", receiver.url, SECRET, frozenset({"threshold"}), max_attempts=4)
    lock = threading.Lock()
    sender = WebhookSender([hook], connect(store_settings), lock, backoff=0.2)
    sender.start()
    event = Event("threshold", "threshold/acme//1750204800/1", {"budget": "acme", "text": "Budget acme passed 100%"})
    sender.submit(event)
    sender.submit(event)  # the same key again: queued once
    sender.submit(Event("anomaly", "anomaly/x", {"text": "not subscribed"}))
    deadline = time.monotonic() + 30
    while sender.delivered == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    assert sender.delivered == 1 and len(receiver.got) == 3  # 500, 500, 204
    _, headers, body = receiver.got[-1]
    assert headers["x-llm-cost-signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert b'"text": "Budget acme passed 100%"' in body and b'"event": "threshold"' in body

    again = WebhookSender([hook], connect(store_settings), threading.Lock(), backoff=0.2)
    again.load()
    again.start()
    again.submit(event)
    again.stop()
    assert len(receiver.got) == 3
    receiver.server.shutdown()


def test_a_dead_endpoint_is_given_up_after_max_attempts() -> None:
    calls: list[str] = []

    def refuse(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        calls.append(url)
        raise ConnectionRefusedError

    sender = WebhookSender([Webhook("dead", "http://127.0.0.1:9/x", SECRET, max_attempts=3)], None,
                           threading.Lock(), backoff=0.01, post=refuse)
    sender.start()
    sender.submit(Event("unpriced", "unpriced/1", {"text": "t"}))
    sender.stop()
    assert (len(calls), sender.failed, sender.delivered) == (3, 1, 0)


def test_webhook_config_problems_never_echo_the_secret() -> None:
    with pytest.raises(BudgetConfigError) as err:
        parse_webhooks({"webhooks": [{"url": "ftp://x", "secret": "short-secret", "events": ["nope"], "bogus": 1}]})
    text = str(err.value)
    assert "webhooks[0].url" in text and "webhooks[0].events" in text and "'bogus'" in text
    assert "short-secret" not in text
    hooks = parse_webhooks({"webhooks": [{"url": "https://h/x", "secret_env": "HOOK_SECRET"}]},
                           environ={"HOOK_SECRET": SECRET})
    assert hooks[0].secret == SECRET and SECRET not in repr(hooks[0])


def test_budget_and_anomaly_config_problems_are_listed_together() -> None:
    with pytest.raises(BudgetConfigError) as err:
        parse_budgets({"budgets": [{"name": "a", "limit_usd": 1, "max_entities": 5},
                                   {"name": "b", "limit_usd": 1, "scope": {"each": ""}}]})
    assert "max_entities: set without [budgets.scope] each" in str(err.value) and "b).scope.each" in str(err.value)
    assert parse_anomalies({"anomalies": {"z": 4, "min_usd": "0.5"}}) == AnomalyOptions(z=4.0, min_usd_pusd=USD // 2)
    with pytest.raises(BudgetConfigError, match="anomalies.weeks"):
        parse_anomalies({"anomalies": {"weeks": 1}})


def weekly(level: int, weeks: int, start: int = 0) -> dict[int, int]:
    """Office-hours spend: ``level`` on weekday hours 8-18, a tenth of it otherwise."""
    out = {}
    for h in range(start, start + weeks * HOURS_PER_WEEK):
        day, hour = (h // 24 + 3) % 7, h % 24  # hour 0 of the epoch is a Thursday
        out[h] = level if day < 5 and 8 <= hour < 18 else level // 10
    return out


def test_a_spike_is_anomalous_against_its_hour_of_week_and_office_hours_are_not() -> None:
    series = weekly(10 * USD, 5)
    now = 5 * HOURS_PER_WEEK - 1
    base = baseline(series, now, 0)
    assert base is not None and base.kind == "hour_of_week"
    assert score_hour(series[now], base, AnomalyOptions())[1] is False
    monday_10 = max(h for h in range(now) if (h // 24 + 3) % 7 == 0 and h % 24 == 10)
    assert score_hour(series[monday_10], baseline(series, monday_10, 0), AnomalyOptions())[1] is False
    sunday_3 = max(h for h in range(now) if (h // 24 + 3) % 7 == 6 and h % 24 == 3)
    # office-hours spend on a Sunday night: normal for the daytime, 10x its own hour-of-week
    assert score_hour(10 * USD, baseline(series, sunday_3, 0), AnomalyOptions())[1] is True


def test_with_short_history_the_baseline_is_the_recent_hours() -> None:
    series = {h: USD for h in range(30)}
    base = baseline(series, 30, 0)
    assert base is not None and base.kind == "recent" and base.median == USD
    assert score_hour(20 * USD, base, AnomalyOptions())[1] is True
    assert baseline({0: USD}, 3, 0) is None  # too little history: no score


def test_seasonal_forecast_follows_the_week_and_needs_a_week_of_history() -> None:
    series = weekly(10 * USD, 4)
    now_ns = 4 * HOURS_PER_WEEK * HOUR_NS
    model = fit_seasonal(series, now_ns, 0)
    assert model is not None and model.level == pytest.approx(1.0)
    next_week = model.expected(now_ns, now_ns + HOURS_PER_WEEK * HOUR_NS)
    assert next_week == sum(weekly(10 * USD, 1).values())
    assert fit_seasonal(series, 100 * HOUR_NS, 0) is None
