"""The first steps of a new user: each mistake or trap is one clear line, never a traceback or a wrong store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from llm_cost_tracker.testing import ServiceProcess, free_port, genai_attributes, http_json


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One running service (no budgets configured), started with a benchmark variable our docs recommend."""
    svc = ServiceProcess(tmp_path_factory.mktemp("svc") / "store", env={"LCT_SCHEDULING_DATA": "/nowhere"}).start()
    yield svc
    svc.stop()


def test_version_flag_prints_the_installed_version() -> None:
    """--version prints the package version and exits 0."""
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"llm-cost-tracker {metadata.version('llm-cost-tracker')}"


def test_unknown_flag_shows_the_usage_of_its_command() -> None:
    """A bogus flag to `run` is reported with run's usage, not the top-level one."""
    out = cli("run", "--bogus-flag")
    assert out.returncode == 2
    assert out.stderr.startswith("usage: llm-cost-tracker run ") and "unrecognized arguments: --bogus-flag" in out.stderr


def test_store_flags_work_before_the_command(tmp_path: Path) -> None:
    """`--data-dir DIR` given before the command applies to it (not "invalid choice")."""
    out = cli("--data-dir", str(tmp_path / "nothing"), "sql", "SELECT 1")
    assert out.returncode == 2 and "invalid choice" not in out.stderr
    assert f"no store at {tmp_path / 'nothing'}" in out.stderr


def test_report_where_no_store_is_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """`report` in a directory without a store is one line naming --data-dir, and leaves no empty store behind."""
    out = cli("report", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "--data-dir" in out.stderr
    assert not (tmp_path / ".llm-cost-tracker").exists()


def test_report_while_the_service_runs_goes_through_its_sql_endpoint(service: ServiceProcess) -> None:
    """`report` on the store a running service holds answers through the service's SQL endpoint."""
    out = cli("report", "--data-dir", service.data_dir, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_report_while_a_service_without_sql_endpoint_runs_is_one_line(tmp_path: Path) -> None:
    """With ``--sql-http off`` the store cannot be read while it runs: one line saying what to do, exit 2."""
    svc = ServiceProcess(tmp_path / "store", "--sql-http", "off").start()
    try:
        out = cli("report", "--data-dir", svc.data_dir)
    finally:
        svc.stop()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another process" in lines[0] and "--sql-http" in lines[0]


def test_sql_errors_point_at_the_users_query(tmp_path: Path) -> None:
    """A broken query's error speaks of the user's text, never of the FORMAT clause the client appends."""
    store = tmp_path / "store"
    assert cli("migrate", "--data-dir", str(store)).returncode == 0
    errors = {}
    for query in ("SELECT 1 +", "SELEC * FROM llm_spans", "SELECT count() FROM llm_spans WHERE"):
        out = cli("sql", query, "--data-dir", str(store))
        assert out.returncode == 1, query
        assert "FORMAT" not in out.stderr and "Native" not in out.stderr, out.stderr
        errors[query] = out.stderr
    assert "position 11 (end of query)" in errors["SELECT 1 +"]


def test_busy_port_names_the_flag_to_change(service: ServiceProcess, tmp_path: Path) -> None:
    """A second service on a port in use exits 2 with one line naming --otlp-grpc and LCT_OTLP_GRPC."""
    out = cli("run", "--otlp-grpc", service.endpoint, "--http", f"127.0.0.1:{free_port()}",
              "--data-dir", str(tmp_path / "store"), "--log-format", "json")
    assert out.returncode == 2
    assert "Failed to add port" not in out.stderr + out.stdout
    errors = [e for e in map(json.loads, out.stderr.splitlines()) if e["level"] == "error"]
    assert len(errors) == 1 and "--otlp-grpc" in errors[0]["event"] and "LCT_OTLP_GRPC" in errors[0]["event"]


def test_budgets_list_is_empty_when_none_are_configured(service: ServiceProcess) -> None:
    """GET /v1/budgets without budgets answers 200 with an empty list, not 404 'no route'."""
    status, body = http_json(service.http_url + "/v1/budgets")
    assert status == 200 and body["budgets"] == [] and body["entity_budgets"] == [] and body["total"] == 0, body


def test_unknown_model_is_warned_once(service: ServiceProcess) -> None:
    """A model the catalog does not know is logged in one warning, however many of its spans arrive."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=service.endpoint, insecure=True)))
    tracer = provider.get_tracer("newcomer")
    for _ in range(3):
        with tracer.start_as_current_span("chat", attributes=genai_attributes(model="no-such-model-xyz")):
            pass
    provider.shutdown()
    log = service.log()
    assert log.count("no-such-model-xyz") == 1, log
