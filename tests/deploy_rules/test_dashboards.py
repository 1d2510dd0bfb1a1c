"""deploy/grafana/*.json: every panel query runs — PromQL through promtool, SQL through chDB on the real schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from llm_cost_tracker.budgets import (
    AnomalyOptions,
    BudgetCollector,
    BudgetMonitor,
    BudgetService,
    WebhookSender,
    parse_budgets,
)
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
FROM_S, TO_S = 1_749_000_000, 1_751_000_000
PROM_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$budget": ".*"}


def targets(kind: str) -> list[tuple[str, str, dict]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] == kind:
                    out.append((path.name, panel["title"], target))
    return out


def promql(expr: str) -> str:
    for var, value in PROM_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def clickhouse_sql(raw: str) -> str:
    """Expand the grafana-clickhouse-datasource macros and variables the dashboards use."""
    raw = re.sub(r"\$__timeFilter\((\w+)\)",
                 rf"\1 >= toDateTime({FROM_S}, 'UTC') AND \1 <= toDateTime({TO_S}, 'UTC')", raw)
    raw = raw.replace("$__fromTime", f"toDateTime({FROM_S}, 'UTC')").replace("$__toTime", f"toDateTime({TO_S}, 'UTC')")
    raw = raw.replace("${tenant:singlequote}", "'acme'")
    assert "$" not in raw, f"unexpanded macro in {raw}"
    return raw


def exported_names() -> set[str]:
    """Every series name our processes expose, plus the recording rules of alerts.yaml and Prometheus' own."""
    metrics = Metrics(CollectorRegistry())
    KafkaMetrics(metrics)
    parsed, _ = parse_budgets({"budgets": [{"name": "x", "limit_usd": 1}]})
    service = BudgetService(parsed, client=None)
    sender = WebhookSender([], None, threading.Lock())
    metrics.registry.register(BudgetCollector(service, BudgetMonitor(service, sender, AnomalyOptions())))
    names = {"up"}
    for family in metrics.registry.collect():
        base = family.name
        names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    names |= {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return names


def test_dashboards_are_well_formed() -> None:
    """Each dashboard has a uid, unique panel ids and only the Prometheus and ClickHouse data sources."""
    assert len(DASHBOARDS) >= 3
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in d["panels"]:
            assert panel["targets"], (path.name, panel["title"])
            for t in panel["targets"]:
                assert t["datasource"]["type"] in ("prometheus", "grafana-clickhouse-datasource")
    assert len(uids) == len(DASHBOARDS)
    assert targets("grafana-clickhouse-datasource"), "at least one SQL panel"


def test_promql_panels_use_exported_metrics() -> None:
    """Every metric name a PromQL panel reads is one our processes export (or a recording rule of ours)."""
    known = exported_names()
    for dashboard, title, target in targets("prometheus"):
        for name in re.findall(r"\b((?:llm_|budget:)[a-z_:0-9]+|up)\b", target["expr"]):
            assert name in known, f"{dashboard} / {title}: unknown metric {name}"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian: apt-get install prometheus; `make test` does it)")
def test_promql_panels_parse(tmp_path: Path) -> None:
    """Every PromQL panel query is valid: each becomes a recording rule that `promtool check rules` accepts."""
    rules = [{"record": f"panel_query:{i}", "expr": promql(t["expr"])} for i, (_, _, t) in enumerate(targets("prometheus"))]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout


def test_sql_panels_run_on_the_real_schema(store) -> None:
    """Every SQL panel query runs in chDB against the migrated schema and returns the rows loaded."""
    at = (FROM_S + 3600) * 10**9
    ClickHouseSink(store).write([span_record(
        start_time_ns=at + i * 10**9, service_name="chat", tenant="acme", provider="openai", request_model="gpt-4o",
        response_model="gpt-4o", usage=TokenUsage(100, 10, 50), cost_pusd=PICO_PER_USD) for i in range(3)])
    sql_targets = targets("grafana-clickhouse-datasource")
    for dashboard, title, target in sql_targets:
        rows = store.query(clickhouse_sql(target["rawSql"])).result_rows
        assert rows, f"{dashboard} / {title}: no rows"
    for path in DASHBOARDS:
        for var in json.loads(path.read_text())["templating"]["list"]:
            if var.get("datasource", {}).get("type") == "grafana-clickhouse-datasource":
                assert store.query(var["query"]).result_rows == [("acme",)]
