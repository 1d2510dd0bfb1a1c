"""The real-client matrix: real instrumentations, real client libraries, the real service.

One service and one fake provider for the module; each instrumentation drives its calls (chat,
streams with and without usage, Responses API, embeddings, Anthropic cache writes and reads) in a
process of its own (instrumentations patch the libraries globally), exporting every span in an
Export of its own. OpenLIT needs other openai/anthropic versions than the suite: it runs from its own
small venv (``make test`` builds it: .venv-openlit, see the Makefile; LCT_OPENLIT_PYTHON names another).
Then the table, the rollups, the metrics and a budget must all show each call once, at list price.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from expected import CALLS, EXPECTED, TOTAL
from fake_provider import FakeProvider

from llm_cost_tracker.testing import ServiceProcess
from llm_cost_tracker.types import PICO_PER_USD

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
OPENLIT_PYTHON = Path(os.environ.get("LCT_OPENLIT_PYTHON", ROOT / ".venv-openlit" / "bin" / "python"))
TENANT = "matrix"
BUDGET = f'''
[budget_options]
refresh_seconds = 0

[[budgets]]
name = "matrix"
limit_usd = 1
period = "day"
[budgets.scope]
tenant = "{TENANT}"
'''


@dataclass
class Run:
    rows: dict[str, list[dict[str, Any]]]
    """service (scenario) -> its LLM spans, in the order they ended."""
    rollups: dict[str, dict[str, Any]]
    metrics: str
    budget: dict[str, Any]
    scenarios: list[str]


def _metric(text: str, name: str, **labels: str) -> Decimal:
    total = Decimal(0)
    for label_text, value in re.findall(rf"^{name}{{([^}}]*)}} (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(have.get(k) == v for k, v in labels.items()):
            total += Decimal(value)
    return total


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    data = tmp_path_factory.mktemp("matrix")
    (data / "lct.toml").write_text(BUDGET)
    provider = FakeProvider()
    # --ack stored: an Export is answered once its spans are stored, and the spend metrics are counted then
    svc = ServiceProcess(data / "store", "--config", str(data / "lct.toml"), "--batch-age-seconds", "0.2",
                         "--ack", "stored").start()
    assert OPENLIT_PYTHON.exists(), f"no OpenLIT venv at {OPENLIT_PYTHON}: make test builds it (.venv-openlit)"
    scenarios = sorted(EXPECTED)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    try:
        procs = {}
        for name in scenarios:  # all at once: each is mostly imports, and they share nothing
            python = str(OPENLIT_PYTHON) if name == "openlit" else sys.executable
            procs[name] = subprocess.Popen(
                [python, str(HERE / "drive.py"), name, "--provider", provider.url, "--otlp", svc.endpoint,
                 "--tenant", TENANT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name} driver failed:\n{err[-3000:]}"
        metrics = svc.metrics()
        with urllib.request.urlopen(svc.http_url + "/v1/budgets/matrix", timeout=10) as response:
            budget = json.loads(response.read())
    finally:
        assert svc.stop() == 0
        provider.stop()
    spans = svc.sql(
        "SELECT service_name, span_id, pricing_status, toString(cost_usd) AS cost, "
        "attributes['llm_cost_tracker.duplicate_of'] AS duplicate_of, "
        "toUnixTimestamp64Nano(timestamp) + duration_ns AS end_ns FROM llm_spans ORDER BY end_ns, span_id")
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in spans:
        rows.setdefault(row["service_name"].removeprefix("matrix-"), []).append(row)
    rollups = {r["service_name"].removeprefix("matrix-"): r for r in svc.sql(
        "SELECT service_name, sum(requests) AS requests, toString(sum(cost_usd)) AS cost, "
        "sum(unpriced_requests) AS unpriced FROM llm_spend_hourly GROUP BY service_name")}
    return Run(rows, rollups, metrics, budget, scenarios)


def _cost(text: str | None) -> int | None:
    return None if text is None else int(Decimal(text) * PICO_PER_USD)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_each_call_is_stored_once_at_list_price(run: Run, scenario: str) -> None:
    """llm_spans: one priced row per call, to the pico-dollar; a second instrumentation's span of a call is a
    duplicate with NULL cost naming the priced span; a call without usage is no_usage with NULL cost."""
    rows = run.rows.get(scenario, [])
    assert [(r["pricing_status"], _cost(r["cost"])) for r in rows] == EXPECTED[scenario]
    priced = {r["span_id"] for r in rows if r["pricing_status"] == "priced"}
    assert all(r["duplicate_of"] in priced for r in rows if r["pricing_status"] == "duplicate")
    assert sum(_cost(r["cost"]) or 0 for r in rows) == TOTAL[scenario]  # what a plain sum(cost_usd) says


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_rollups_and_metrics_count_each_call_once(run: Run, scenario: str) -> None:
    """The hourly rollup's cost and llm_cost_usd_total equal the table's; duplicates add to no metric."""
    service = f"matrix-{scenario}"
    assert _cost(run.rollups[scenario]["cost"]) == TOTAL[scenario]
    assert _metric(run.metrics, "llm_cost_usd_total", service=service) * PICO_PER_USD == TOTAL[scenario]
    no_usage = sum(1 for status, _ in EXPECTED[scenario] if status == "no_usage")
    model_rows = [r for r in run.rows[scenario] if r["pricing_status"] != "duplicate"]
    assert len(model_rows) == CALLS[scenario]
    assert run.rollups[scenario]["requests"] == CALLS[scenario]  # duplicate rows are not rolled up (0006)
    assert run.rollups[scenario]["unpriced"] == no_usage


def test_metrics_name_duplicates_and_spans_without_usage(run: Run) -> None:
    """llm_duplicate_spans_total counts the duplicates; llm_unpriced_spans_total{reason="no_usage"} the calls
    without usage, and no duplicate is counted as unpriced."""
    expected = [row for s in run.scenarios for row in EXPECTED[s]]
    assert _metric(run.metrics, "llm_duplicate_spans_total") == sum(1 for st, _ in expected if st == "duplicate")
    assert _metric(run.metrics, "llm_unpriced_spans_total", reason="no_usage") == sum(
        1 for st, _ in expected if st == "no_usage")
    assert _metric(run.metrics, "llm_unpriced_spans_total", reason="unknown_model") == 0


def test_budget_counts_each_call_once(run: Run) -> None:
    """The tenant's budget spend is the sum of the list prices of its calls."""
    total = sum(TOTAL[s] for s in run.scenarios)
    assert run.budget["spent_usd"] == round(total / PICO_PER_USD, 6)
