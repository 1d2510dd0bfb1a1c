"""The budgets API and /metrics behind tenant tokens: a tenant sees only its own budgets; an admin sees all;
/metrics (every tenant's services and budgets) needs an admin or metrics token."""

from __future__ import annotations

import json

import pytest

from llm_cost_tracker.testing import ServiceProcess, http_get, http_json

CONFIG = """
[auth]
admin_tokens = ["admin"]
metrics_tokens = ["scrape"]
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


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service for the module: its tests only read (budgets, advice, /metrics), none changes its state."""
    root = tmp_path_factory.mktemp("budget-access")
    config = root / "lct.toml"
    config.write_text(CONFIG)
    svc = ServiceProcess(root / "store", "--config", str(config)).start()
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


def get(svc: ServiceProcess, path: str, *authorization: str) -> tuple[int, bytes]:
    """GET ``path`` with each of ``authorization`` as its own ``Authorization`` field (repeats allowed)."""
    return http_get(svc.http_port, path, *authorization)


def test_unknown_budget_names_only_the_callers_budgets(service) -> None:
    """A 404 for an unknown budget lists the caller's own budget names, never another tenant's."""
    status, body = call(service, "/v1/budgets/nope", "globex-token")
    assert status == 404 and "acme-monthly" not in body["error"] and "company-wide" not in body["error"]
    status, body = call(service, "/v1/budgets/nope", "acme-token")
    assert status == 404 and "acme-monthly" in body["error"] and "company-wide" not in body["error"]
    assert "company-wide" in call(service, "/v1/budgets/nope", "admin")[1]["error"]


def test_metrics_need_an_admin_or_metrics_token(service) -> None:
    """/metrics names every budget with its limit: no token and tenant tokens get 401, admin and scrape 200."""
    assert get(service, "/metrics")[0] == 401
    assert get(service, "/metrics", "Bearer acme-token")[0] == 401
    for token in ("admin", "scrape"):
        status, body = get(service, "/metrics", f"Bearer {token}")
        assert status == 200 and b'llm_budget_limit_usd{budget="company-wide"}' in body
    assert get(service, "/healthz")[0] == 200  # probes need no token
    assert call(service, "/v1/budgets", "scrape")[0] == 401  # a scrape token reads metrics, nothing else


def test_metrics_answer_only_the_families_named(service) -> None:
    """``?name[]=`` (repeatable, percent-encoded or not) answers those samples only, still behind the token: a poller
    watching one counter does not make the service format every series."""
    whole = get(service, "/metrics", "Bearer scrape")[1]
    assert get(service, "/metrics?name[]=llm_budget_limit_usd")[0] == 401
    status, body = get(service, "/metrics?name%5B%5D=llm_budget_limit_usd&name[]=llm_pipeline_exports_total",
                       "Bearer scrape")
    assert status == 200 and b'llm_budget_limit_usd{budget="company-wide"}' in body
    names = {line.split(b"{")[0].split(b" ")[0] for line in body.splitlines() if line and not line.startswith(b"#")}
    assert names <= {b"llm_budget_limit_usd", b"llm_pipeline_exports_total"} and b"llm_budget_limit_usd" in names
    assert len(body) * 5 < len(whole)
    assert get(service, "/metrics?name[]=no_such_metric", "Bearer scrape")[1] == b""


def test_repeated_authorization_fields_are_refused(service) -> None:
    """Two Authorization fields are refused whichever comes first: servers disagree on which one counts."""
    for pair in (("Bearer acme-token", "Bearer admin"), ("Bearer admin", "Bearer acme-token")):
        assert get(service, "/v1/budgets", *pair)[0] == 401
        assert get(service, "/metrics", *pair)[0] == 401
    assert get(service, "/v1/budgets", "Bearer admin")[0] == 200
