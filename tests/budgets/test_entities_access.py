"""Per-entity budgets behind tokens, on the real service: budgets per API key list hashes (never a key),
/v1/check hashes the caller's key the same way, a tenant sees its own entity only, and budgets managed
with PUT/DELETE need an admin token and survive a restart."""

from __future__ import annotations

import json

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, http_json, make_request, make_span

CONFIG = """
[auth]
admin_tokens = ["admin"]
[[auth.tenants]]
name = "acme"
tokens = ["acme-token"]
[[auth.tenants]]
name = "globex"
tokens = ["globex-token"]

[redaction.modes]
"api_key.id" = "hash"

[budget_options]
refresh_seconds = 0

[[budgets]]
name = "per-key"
limit_usd = 0.001
period = "day"
[budgets.scope]
each = "api_key.id"

[[budgets]]
name = "per-tenant"
limit_usd = 0.001
period = "day"
[budgets.scope]
each = "tenant"
"""
KEYS = {"acme-token": "key-alpha-0001", "globex-token": "key-beta-0002"}
ENV = {"LCT_REDACTION_HMAC_KEY": "budget-test-hmac-key-0123456789"}


def send(svc: ServiceProcess) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
    for token, tokens in (("acme-token", 3000), ("globex-token", 14000)):
        span = make_span({**genai_attributes("gpt-4o-mini", input_tokens=tokens, output_tokens=0),
                          "api_key.id": KEYS[token]})
        stub.Export(make_request([span]), metadata=[("authorization", f"Bearer {token}")], timeout=30)


def api(svc: ServiceProcess, path: str, token: str, body: dict | None = None, method: str = "GET") -> tuple[int, dict]:
    return http_json(svc.http_url + path, json.dumps(body).encode() if body is not None else None, method, token)


def test_entities_behind_tokens_and_budgets_managed_at_run_time(tmp_path) -> None:
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG)
    svc = ServiceProcess(tmp_path / "store", "--config", str(config), env=ENV).start()
    try:
        send(svc)
        status, listed = api(svc, "/v1/budgets", "admin")
        assert status == 200
        per_key = {b["entity"]: b["spent_usd"] for b in listed["budgets"] if b["name"] == "per-key"}
        assert sorted(per_key.values()) == [0.00045, 0.0021]
        assert all(e.startswith("hmac-sha256:") for e in per_key)
        per_tenant = {b["entity"]: b["status"] for b in listed["budgets"] if b["name"] == "per-tenant"}
        assert per_tenant == {"acme": "ok", "globex": "exceeded"}
        everything = json.dumps(listed) + svc.metrics("admin")
        assert not any(key in everything for key in KEYS.values())

        status, beta = api(svc, "/v1/check?api_key.id=key-beta-0002&model=gpt-4o-mini", "admin")
        assert status == 200 and beta["allow"] is False
        assert beta["budgets"][0]["entity"].startswith("hmac-sha256:") and "key-beta" not in json.dumps(beta)
        assert api(svc, "/v1/check?api_key.id=key-alpha-0001&model=gpt-4o-mini", "admin")[1]["allow"] is True

        # a tenant sees its own entity of the per-tenant budget, and no per-key entity (not scoped to it)
        status, mine = api(svc, "/v1/budgets", "acme-token")
        assert [(b["name"], b["entity"]) for b in mine["budgets"]] == [("per-tenant", "acme")]
        status, check = api(svc, "/v1/check?model=gpt-4o-mini&tenant=globex", "acme-token")
        assert check["allow"] is True and [b["entity"] for b in check["budgets"]] == ["acme"]

        table = {"limit_usd": "0.0001", "period": "day", "scope": {"tenant": "acme"}}
        assert api(svc, "/v1/budgets/acme-daily", "acme-token", table, "PUT")[0] == 403
        assert api(svc, "/v1/budgets/acme-daily", "admin", {"limit_usd": -1}, "PUT")[0] == 400
        assert api(svc, "/v1/budgets/per-key", "admin", table, "PUT")[0] == 409
        status, put = api(svc, "/v1/budgets/acme-daily", "admin", table, "PUT")
        assert (status, put["created"]) == (201, True)
        status, daily = api(svc, "/v1/budgets/acme-daily", "acme-token")
        assert (status, daily["status"], daily["source"]) == (200, "exceeded", "api")
        assert svc.stop() == 0

        svc = ServiceProcess(tmp_path / "store", "--config", str(config), env=ENV).start()
        assert api(svc, "/v1/budgets/acme-daily", "admin")[1]["spent_usd"] == 0.00045
        assert api(svc, "/v1/budgets/acme-daily", "globex-token", method="DELETE")[0] == 403
        assert api(svc, "/v1/budgets/acme-daily", "admin", method="DELETE") == (200, {"name": "acme-daily",
                                                                                   "deleted": True})
        assert svc.stop() == 0
        svc = ServiceProcess(tmp_path / "store", "--config", str(config), env=ENV).start()
        assert api(svc, "/v1/budgets/acme-daily", "admin")[0] == 404
    finally:
        svc.stop()
