"""The budgets HTTP API and gauges, served by the real HttpServer against chDB."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from llm_cost_tracker.budgets import BudgetHook, BudgetService, parse_budgets
from llm_cost_tracker.httpserver import HttpServer
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.storage.client import connect
from llm_cost_tracker.testing import http_json

from .conftest import USD, rec
from .test_service import NOW, BrokenClient, H

BUDGETS = [
    {"name": "acme", "limit_usd": 100, "scope": {"tenant": "acme"}, "downgrade": {"gpt-4o": ["gpt-4o-mini"]}},
    {"name": "all-day", "limit_usd": 10, "period": "day", "timezone": "Europe/Berlin"},
]


@pytest.fixture
def served(store, store_settings):
    ClickHouseSink(store).write([rec(NOW - H, 60 * USD), rec(NOW - H, 5 * USD, tenant="beta")])
    parsed, options = parse_budgets({"budgets": BUDGETS})
    hook = BudgetHook(BudgetService(parsed, connect(store_settings), clock=lambda: NOW))
    registry = CollectorRegistry()
    http = HttpServer("127.0.0.1:0", registry, lambda: (True, "ok"))
    hook.serve(http, registry)
    http.start()
    yield f"http://127.0.0.1:{http.port}", registry
    http.stop()
    hook.stop()


def call(url: str, body: bytes | None = None, method: str = "GET") -> tuple[int, dict]:
    return http_json(url, body, method)


def test_list_and_get_budgets(served) -> None:
    """GET /v1/budgets lists every budget's status; GET /v1/budgets/{name} returns one."""
    base, _ = served
    status, body = call(base + "/v1/budgets")
    assert status == 200 and [b["name"] for b in body["budgets"]] == ["acme", "all-day"]
    status, acme = call(base + "/v1/budgets/acme")
    assert status == 200
    assert {k: acme[k] for k in ("limit_usd", "spent_usd", "remaining_usd", "status", "period_start", "period_end")} == {
        "limit_usd": 100.0, "spent_usd": 60.0, "remaining_usd": 40.0, "status": "warning",
        "period_start": "2025-06-01T00:00:00Z", "period_end": "2025-07-01T00:00:00Z"}
    assert acme["projected_usd"] >= 60.0
    status, day = call(base + "/v1/budgets/all-day")
    assert (day["status"], day["spent_usd"], day["period_start"]) == ("exceeded", 65.0, "2025-06-17T22:00:00Z")


def test_unknown_budget_is_a_json_404(served) -> None:
    """An unknown name answers 404 with the known names."""
    status, body = call(served[0] + "/v1/budgets/nope")
    assert status == 404 and "nope" in body["error"] and "acme" in body["error"]


def test_advice(served) -> None:
    """POST /v1/advice applies the covering budgets' downgrade policy and says why."""
    status, body = call(served[0] + "/v1/advice", json.dumps({"model": "gpt-4o", "tenant": "acme",
                                                               "service": "chat"}).encode(), "POST")
    assert status == 200 and body["model"] == "gpt-4o-mini" and body["downgraded"]
    assert "60.0%" in body["reason"] and body["budget_exceeded"]  # all-day covers every call and is exceeded


@pytest.mark.parametrize(("payload", "needle"), [
    (b"not json", "JSON object"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "'model' is required"),
    (b'{"model": "m", "tenant": 3, "colour": "red"}', "unknown field 'colour'"),
    (b'{"model": "m", "attributes": {"a": 1}}', "'attributes'"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deep"),
])
def test_advice_errors_are_json_400(served, payload, needle) -> None:
    """A malformed advice request answers 400 with a JSON message naming the problem."""
    status, body = call(served[0] + "/v1/advice", payload, "POST")
    assert status == 400 and needle in body["error"]
    assert "Recursion" not in body["error"] and "internal" not in body["error"]


def test_wrong_method_and_store_down() -> None:
    """A wrong method is a JSON 405; a store that cannot be read is a JSON 503."""
    parsed, _ = parse_budgets({"budgets": BUDGETS})
    registry = CollectorRegistry()
    http = HttpServer("127.0.0.1:0", registry, lambda: (True, "ok"))
    hook = BudgetHook(BudgetService(parsed, BrokenClient(), clock=lambda: NOW))
    hook.serve(http, registry)
    http.start()
    try:
        base = f"http://127.0.0.1:{http.port}"
        assert call(base + "/v1/budgets", b"{}", "POST")[0] == 405
        status, body = call(base + "/v1/budgets")
        assert status == 503 and "connection refused" in body["error"]
        assert call(base + "/v1/advice", b'{"model": "m"}', "POST")[0] == 503
        text = generate_latest(registry).decode()
        assert "llm_budget_refresh_errors_total" in text and "llm_budget_spent_usd{" not in text
        status, body = call(base + "/v1/check?model=m")  # answered from memory: nothing read yet
        assert status == 503 and "no budget state read yet" in body["error"]
    finally:
        http.stop()
        hook.stop()


def test_gauges(served) -> None:
    """The llm_budget_* gauges carry the statuses, labelled by budget, in valid exposition format."""
    _, registry = served
    text = generate_latest(registry).decode()
    for line in ('llm_budget_limit_usd{budget="acme"} 100.0', 'llm_budget_spent_usd{budget="acme"} 60.0',
                 'llm_budget_remaining_ratio{budget="acme"} 0.4', 'llm_budget_remaining_ratio{budget="all-day"} 0.0',
                 'llm_budget_threshold_ratio{budget="acme",threshold="0.8"} 0.8',
                 'llm_budget_period_end_timestamp_seconds{budget="acme"} 1.751328e+09'):
        assert line in text, line
    assert 'llm_budget_projected_usd{budget="acme"}' in text
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (apt-get install prometheus); exposition format not linted")
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
