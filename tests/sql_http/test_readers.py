"""Readers while the service runs: ``report``/``sql`` through the endpoint, ``/v1/spend``, the dashboards' SQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from llm_cost_tracker.storage import endpoint as discovery
from llm_cost_tracker.testing import ServiceProcess, http_json
from tests.sql_http.conftest import ACME, ADMIN, GLOBEX, SENT, Running

ROOT = Path(__file__).resolve().parents[2]


def cli(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", *args, "--data-dir",
                           running.service.data_dir, "--config", str(running.config)],
                          capture_output=True, text=True, timeout=120, env=running.service.env)


def test_the_service_records_its_endpoint(running: Running) -> None:
    """The data directory names the live endpoint, for readers."""
    endpoint = discovery.find(running.service.data_dir)
    assert endpoint is not None and endpoint.port == running.service.sql_port and endpoint.pid != os.getpid()


def test_sql_and_report_while_the_service_runs(running: Running) -> None:
    """`sql` and `report` answer while the service holds the store, with the admin token of the config."""
    out = cli(running, "sql", "SELECT tenant, count() AS n FROM llm_spans WHERE service_name LIKE '%-bot' "
                              "AND model = 'gpt-4o-mini' GROUP BY tenant ORDER BY tenant", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert {r["tenant"]: r["n"] for r in json.loads(out.stdout)}.keys() == SENT.keys()
    out = cli(running, "sql", "INSERT INTO llm_spans (tenant) VALUES ('x')")
    assert out.returncode == 1 and "read-only" in out.stderr


def test_spend_api_matches_report(running: Running) -> None:
    """/v1/spend gives report's figures for every grouping; a tenant's token gives its own spend only."""
    for by in ("model", "service", "provider", "tenant", "day"):
        out = cli(running, "report", "--by", by, "--since", "2d", "--format", "json")
        assert out.returncode == 0, out.stderr
        status, body = http_json(f"{running.service.http_url}/v1/spend?by={by}&since=2d", token=ADMIN)
        assert status == 200, body
        assert body["rows"] == json.loads(out.stdout), by
    today = dt.datetime.now(dt.UTC).date()
    status, body = http_json(f"{running.service.http_url}/v1/spend?by=tenant&since={today}", token=ACME)
    assert status == 200 and body["table"] == "llm_spend_daily"
    assert [r["tenant"] for r in body["rows"]] == ["acme"] and body["rows"][0]["requests"] >= SENT["acme"]
    assert http_json(f"{running.service.http_url}/v1/spend?tenant=globex", token=ACME)[0] == 403
    assert http_json(f"{running.service.http_url}/v1/spend", token="wrong")[0] == 401
    assert http_json(f"{running.service.http_url}/v1/spend?by=color", token=GLOBEX)[0] == 400


def _expand(raw: str, start: int, end: int) -> str:
    raw = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 >= toDateTime({start}, 'UTC') AND \1 <= toDateTime({end}, 'UTC')", raw)
    raw = raw.replace("$__fromTime", f"toDateTime({start}, 'UTC')").replace("$__toTime", f"toDateTime({end}, 'UTC')")
    raw = raw.replace("${tenant:singlequote}", "'acme'")
    assert "$" not in raw, raw
    return raw


def test_every_dashboard_sql_panel_runs_through_the_endpoint(running: Running) -> None:
    """Each ClickHouse panel and variable of deploy/grafana/*.json runs with clickhouse-connect, as admin and tenant."""
    now = int(time.time())
    admin, tenant = running.client(ADMIN), running.client(ACME)
    ran = 0
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] != "grafana-clickhouse-datasource":
                    continue
                sql = _expand(target["rawSql"], now - 3 * 86400, now + 3600)
                assert admin.query(sql).result_rows, (path.name, panel["title"])
                tenant.query(sql)
                ran += 1
        for var in dashboard["templating"]["list"]:
            if var.get("datasource", {}).get("type") == "grafana-clickhouse-datasource":
                assert {r[0] for r in admin.query(var["query"]).result_rows} >= set(SENT)
                assert {r[0] for r in tenant.query(var["query"]).result_rows} == {"acme"}
    assert ran >= 4


def test_no_tokens_means_loopback_only(tmp_path: Path) -> None:
    """Without tokens the endpoint binds 127.0.0.1 whatever address was asked, and says so at start."""
    svc = ServiceProcess(tmp_path / "store", "--sql-http", "0.0.0.0:0").start()
    try:
        endpoint = discovery.find(svc.data_dir)
        log = svc.log()
    finally:
        svc.stop()
    assert endpoint is not None and endpoint.host == "127.0.0.1"
    started = [json.loads(line) for line in log.splitlines() if '"sql_http"' in line]
    assert any("loopback only" in e["event"] for e in started), log
    serving = [e["sql_http"] for e in started if e["event"] == "SQL endpoint serving"]
    assert serving and serving[0].startswith("127.0.0.1:"), log  # the address actually bound
    assert discovery.find(svc.data_dir) is None  # the record goes with the service


def test_busy_sql_port_names_the_flag(running: Running, tmp_path: Path) -> None:
    """A second service asking for a SQL port in use exits 2 with one line naming --sql-http and LCT_SQL_HTTP."""
    from llm_cost_tracker.testing import free_port

    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "run", "--otlp-grpc", f"127.0.0.1:{free_port()}", "--otlp-http", "off",
                          "--http", f"127.0.0.1:{free_port()}", "--sql-http", f"127.0.0.1:{running.service.sql_port}",
                          "--data-dir", str(tmp_path / "store"), "--log-format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    errors = [e for e in map(json.loads, out.stderr.splitlines()) if e["level"] == "error"]
    assert len(errors) == 1 and "--sql-http" in errors[0]["event"] and "LCT_SQL_HTTP" in errors[0]["event"]
