"""Lifecycle: the real service with [[budgets]] serves spend before and after a flush, and after a restart."""

from __future__ import annotations

import json
import re
import urllib.request

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

CONFIG = '''
[budget_options]
refresh_seconds = 0

[[budgets]]
name = "acme"
limit_usd = 0.001
period = "day"
timezone = "Europe/Berlin"
downgrade = { "gpt-4o-mini" = ["gpt-4.1-nano"] }
[budgets.scope]
tenant = "acme"
'''


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def metric_total(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


def test_budget_spend_survives_flush_and_restart(tmp_path) -> None:
    """Spend accepted but not flushed is counted; it is the same after the flush and after a restart."""
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG)
    args = ("--config", str(config), "--batch-age-seconds", "60")
    svc = ServiceProcess(tmp_path / "store", *args).start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
        stub.Export(make_request([make_span(genai_attributes("gpt-4o-mini")) for _ in range(20)],
                                 {"tenant.id": "acme"}), timeout=30)
        stub.Export(make_request([make_span(genai_attributes("gpt-4o-mini")) for _ in range(5)],
                                 {"tenant.id": "beta"}), timeout=30)
        metrics = svc.metrics()
        acme = get(svc.http_url + "/v1/budgets/acme")
        # nothing is stored yet (60 s batch age): all of it is pending
        assert acme["spent_usd"] > 0 and acme["pending_usd"] == acme["spent_usd"]
        assert acme["spent_usd"] == 0.0054  # 20 x gpt-4o-mini (1000 in at $0.15/M, 200 out at $0.60/M); not beta's
        # the spend metrics count what the store took (first arrivals only): nothing yet
        assert metric_total(metrics, "llm_cost_usd_total") == 0
        assert 'llm_budget_spent_usd{budget="acme"}' in metrics
        request = urllib.request.Request(svc.http_url + "/v1/advice", method="POST",
                                         data=json.dumps({"model": "gpt-4o-mini", "tenant": "acme"}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            advice = json.loads(response.read())
        assert advice["model"] == ("gpt-4.1-nano" if acme["spent_ratio"] >= 0.5 else "gpt-4o-mini")
    finally:
        assert svc.stop() == 0  # SIGTERM flushes the batch
    svc = ServiceProcess(tmp_path / "store", *args).start()
    try:
        after = get(svc.http_url + "/v1/budgets/acme")
        assert (after["spent_usd"], after["pending_usd"]) == (acme["spent_usd"], 0.0)
    finally:
        svc.stop()
