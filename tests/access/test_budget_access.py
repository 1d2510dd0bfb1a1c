"""The budgets API behind tenant tokens: a tenant sees only its own budgets; an admin sees all."""

from __future__ import annotations

import json

import pytest

from llm_cost_tracker.testing import ServiceProcess, http_json

CONFIG = """
[auth]
admin_tokens = ["admin"]
[[auth.tenants]]
name = "acme"
tokens = ["acme-token"]
[[auth.tenants]]
name = "globex"
tokens = ["globex-token"]

[[budgets]]
name = "acme-monthly"
limit_usd = 100
period = "month"
downgrade = { "gpt-4o" = ["gpt-4o-mini"] }
[budgets.scope]
tenant = "acme"

[[budgets]]
name = "company-wide"
limit_usd = 1000
period = "month"
"""


def call(svc: ServiceProcess, path: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    return http_json(svc.http_url + path, json.dumps(body).encode() if body else None,
                     "POST" if body else "GET", token)


@pytest.fixture
def service(tmp_path):
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG)
    svc = ServiceProcess(tmp_path / "store", "--config", str(config)).start()
    yield svc
    svc.stop()


def test_budget_visibility_follows_the_token(service) -> None:
    """No token is refused; a tenant lists and reads only its own budgets; the admin sees all of them."""
    assert call(service, "/v1/budgets", None)[0] == 401
    assert call(service, "/v1/budgets", "wrong")[0] == 401
    status, body = call(service, "/v1/budgets", "acme-token")
    assert status == 200 and [b["name"] for b in body["budgets"]] == ["acme-monthly"]
    assert call(service, "/v1/budgets", "globex-token")[1]["budgets"] == []
    assert [b["name"] for b in call(service, "/v1/budgets", "admin")[1]["budgets"]] == ["acme-monthly", "company-wide"]
    assert call(service, "/v1/budgets/company-wide", "acme-token")[0] == 404
    assert call(service, "/v1/budgets/acme-monthly", "globex-token")[0] == 404
    assert call(service, "/v1/budgets/acme-monthly", "admin")[0] == 200


def test_advice_uses_the_tokens_tenant(service) -> None:
    """Advice for a tenant token considers that tenant's budgets whatever tenant the body names."""
    status, body = call(service, "/v1/advice", "acme-token", {"model": "gpt-4o", "tenant": "globex"})
    assert status == 200
    assert [b["name"] for b in body["budgets"]] == ["acme-monthly"]
    status, body = call(service, "/v1/advice", "globex-token", {"model": "gpt-4o", "tenant": "acme"})
    assert status == 200 and body["budgets"] == []
