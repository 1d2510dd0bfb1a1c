"""deploy/Dockerfile and deploy/docker-compose.yml, checked without a Docker engine: against the CLI parser,
the settings, the collector configs, and (for the health check) a real running service."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COLLECTOR,
    DEPLOY,
    ROOT,
    check_command,
    check_env_names,
    port_of,
    settings_port,
)

COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
OUR_SERVICES = ("migrate", "receiver", "consumer", "scheduler")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def container_ports(service: dict[str, Any]) -> list[int]:
    return [int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])]


def dockerfile() -> dict[str, list[str]]:
    """Instructions of the final stage (and FROM of every stage), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            out = {"FROM": [*out.get("FROM", []), rest]}
            continue
        out.setdefault(word, []).append(rest.strip())
    return out


def docker_env(instructions: dict[str, list[str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in instructions.get("ENV", []):
        for token in shlex.split(line):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def test_compose_parses_and_references_resolve(compose: dict[str, Any]) -> None:
    """Every depends_on names a service, every bind mount exists, every named volume is declared."""
    services = compose["services"]
    assert {"kafka", "clickhouse", "receiver", "consumer", "scheduler", "otel-collector", "prometheus",
            "grafana"} <= set(services)
    for name, svc in services.items():
        deps = svc.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown service {dep}"
        for mount in svc.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                path = (DEPLOY / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    """The broker is Apache Kafka with no ZooKeeper: it is its own controller."""
    kafka = compose["services"]["kafka"]
    env = env_of(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in " ".join(env).upper()


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_compose_commands_and_ports_match_cli(compose: dict[str, Any], name: str) -> None:
    """Each of our services runs a command build_parser() accepts and publishes only ports it listens on."""
    svc = compose["services"][name]
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile" and (DEPLOY / svc["build"]["context"]).resolve() == ROOT
    assert svc.get("read_only") is True and "ALL" in svc.get("cap_drop", [])
    env = env_of(svc)
    check_env_names(list(env), f"compose service {name}")
    ns = check_command(list(svc["command"]), f"compose service {name}")
    listening = {settings_port(ns, {**docker_env(dockerfile()), **env}, "http")}
    if hasattr(ns, "otlp_grpc"):
        listening.add(settings_port(ns, {**docker_env(dockerfile()), **env}, "otlp_grpc"))
    for port in container_ports(svc):
        assert port in listening, f"{name} publishes container port {port}; it listens on {sorted(listening)}"


def test_collector_in_compose_points_at_the_receiver(compose: dict[str, Any]) -> None:
    """The compose collector runs our collector configs and sends to the receiver's gRPC port with its token."""
    services = compose["services"]
    collector = services["otel-collector"]
    assert collector["image"].startswith("otel/opentelemetry-collector-contrib:")
    mounted = {m.split(":")[0] for m in collector["volumes"]}
    assert {"../collector-config/gateway.yaml", "../collector-config/plaintext.yaml"} <= mounted
    env = env_of(collector)
    host, _, port = env["LLM_COST_TRACKER_ENDPOINT"].partition(":")
    receiver = services[host]
    receiver_env = {**docker_env(dockerfile()), **env_of(receiver)}
    command = receiver["command"]
    grpc = command[command.index("--otlp-grpc") + 1] if "--otlp-grpc" in command else receiver_env["LCT_OTLP_GRPC"]
    assert int(port) == port_of(grpc)
    assert env["LLM_COST_TRACKER_TOKEN"] == receiver_env["LCT_AUTH_TOKEN"]
    referenced = set(re.findall(r"\$\{env:([A-Z_]+)\}", (COLLECTOR / "plaintext.yaml").read_text()))
    assert referenced <= set(env), f"the collector needs {sorted(referenced - set(env))}"


def test_prometheus_scrapes_every_process(compose: dict[str, Any]) -> None:
    """The compose Prometheus scrapes each of our services on its HTTP port and loads deploy/prometheus/alerts.yaml."""
    services = compose["services"]
    config = yaml.safe_load((DEPLOY / "compose-prometheus.yml").read_text())
    targets = {t for sc in config["scrape_configs"] for group in sc["static_configs"] for t in group["targets"]}
    for name in ("receiver", "consumer", "scheduler"):
        cmd = services[name]["command"]
        assert f"{name}:{port_of(cmd[cmd.index('--http') + 1])}" in targets
    mounts = services["prometheus"]["volumes"]
    assert "./prometheus/alerts.yaml:/etc/prometheus/rules/alerts.yaml:ro" in mounts
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    # with tokens, /metrics needs one: Prometheus sends the services' metrics token
    receiver_env = {**docker_env(dockerfile()), **env_of(services["receiver"])}
    for sc in config["scrape_configs"]:
        assert sc["authorization"] == {"type": "Bearer", "credentials": receiver_env["LCT_METRICS_TOKEN"]}


def test_grafana_loads_our_dashboards(compose: dict[str, Any]) -> None:
    """Grafana is provisioned with both data sources the dashboards use and the deploy/grafana folder."""
    grafana = compose["services"]["grafana"]
    assert any(m.startswith("./grafana:") for m in grafana["volumes"])
    sources = yaml.safe_load((DEPLOY / "compose-grafana-datasources.yml").read_text())["datasources"]
    assert {s["type"] for s in sources} == {"prometheus", "grafana-clickhouse-datasource"}
    providers = yaml.safe_load((DEPLOY / "compose-grafana-dashboards.yml").read_text())["providers"]
    mount_target = next(m.split(":")[1] for m in grafana["volumes"] if m.startswith("./grafana:"))
    assert providers[0]["options"]["path"] == mount_target


def test_dockerfile_shape() -> None:
    """Multi-stage, non-root numeric user, one entrypoint for every subcommand, ports and env the service reads."""
    ins = dockerfile()
    assert len(ins["FROM"]) >= 2, "multi-stage build"
    user = ins["USER"][-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0
    assert json.loads(ins["ENTRYPOINT"][-1]) == ["llm-cost-tracker"]
    env = docker_env(ins)
    check_env_names(list(env), "Dockerfile ENV")
    assert check_command(json.loads(ins["CMD"][-1]), "Dockerfile CMD").command == "run"
    exposed = {int(p) for line in ins["EXPOSE"] for p in line.split()}
    assert exposed == {port_of(env["LCT_OTLP_GRPC"]), port_of(env["LCT_OTLP_HTTP"]), port_of(env["LCT_HTTP"]),
                       port_of(env["LCT_SQL_HTTP"])}
    assert env["LCT_DATA_DIR"] in " ".join(ins["VOLUME"])
    for source in ("pyproject.toml", "README.md", "constraints.txt", "src"):
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}"


def healthcheck_command() -> list[str]:
    line = dockerfile()["HEALTHCHECK"][-1]
    return list(json.loads(line[line.index("CMD") + 3:].strip()))


def test_healthcheck_passes_on_a_running_service_and_fails_without_one(tmp_path: Path) -> None:
    """The image's HEALTHCHECK command, run as written, succeeds against a real service on LCT_HTTP and fails on a dead port."""
    from llm_cost_tracker.testing import ServiceProcess, free_port

    command = healthcheck_command()
    assert command[0] == "python"
    command[0] = sys.executable
    svc = ServiceProcess(tmp_path / "store").start()
    try:
        env = {**os.environ, "LCT_HTTP": f"0.0.0.0:{svc.http_port}"}
        ok = subprocess.run(command, env=env, capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        env["LCT_HTTP"] = f"0.0.0.0:{free_port()}"
        bad = subprocess.run(command, env=env, capture_output=True, timeout=30)
        assert bad.returncode != 0
    finally:
        assert svc.stop() == 0


def test_dockerignore_keeps_what_the_build_copies() -> None:
    """The Dockerfile's own ignore file lets through exactly what COPY needs and keeps .venv and .git out."""
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "**"
    assert {"!pyproject.toml", "!README.md", "!constraints.txt", "!src/"} <= set(lines)
    copies = [line.split()[0] for line in dockerfile().get("COPY", []) if not line.startswith("--from")]
    assert set(copies) <= {"pyproject.toml", "src"}, copies
