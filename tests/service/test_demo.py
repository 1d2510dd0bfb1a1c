"""``llm-cost-tracker demo``: the tour's sample spans reach a running service and are priced."""

from __future__ import annotations

import subprocess
import sys


def test_demo_spans_are_stored(service_factory) -> None:
    """Every demo span is stored, the unknown model unpriced and the others priced."""
    svc = service_factory()
    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "demo", "--endpoint", svc.endpoint,
                          "--spans", "120"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "sent 120 LLM spans" in out.stdout
    assert svc.stop() == 0
    rows = svc.sql("SELECT pricing_status, countIf(model = 'my-finetuned-model') AS unknown, count() AS n, "
                   "uniqExact(dialect) AS dialects FROM llm_spans GROUP BY pricing_status ORDER BY pricing_status")
    by = {r["pricing_status"]: r for r in rows}
    assert by["priced"]["n"] + by["unpriced"]["n"] == 120
    assert by["unpriced"]["n"] == by["unpriced"]["unknown"] > 0
    assert by["priced"]["unknown"] == 0 and by["priced"]["dialects"] == 3


def test_demo_reports_a_refused_export(service_factory) -> None:
    """Against a service requiring a token, demo without one fails with the gRPC status, exit 1."""
    svc = service_factory("--auth-token", "t0k")
    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "demo", "--endpoint", svc.endpoint],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "UNAUTHENTICATED" in out.stderr
