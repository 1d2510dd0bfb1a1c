"""Shared helpers for the deploy tests: paths, the chart, and checks against the real CLI parser.

Commands rendered by the chart and the compose file are checked with the CLI's own parser, so a
command or flag that drifts from the CLI fails here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_cost_tracker.cli import build_parser, parse
from llm_cost_tracker.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "llm-cost-tracker"
DEPLOY = ROOT / "deploy"
COLLECTOR = ROOT / "collector-config"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARDS = DEPLOY / "grafana"
# The Kubernetes versions manifests are validated for: the chart's floor and the newest known.
KUBE_VERSIONS = ("1.27.0", "1.35.0")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """Every installed subcommand's parser, by name."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("llm-cost-tracker has no subcommands")


def check_command(argv: list[str], where: str) -> argparse.Namespace:
    """Parse ``argv`` (subcommand first) with the real CLI parser; fail on an unknown command, flag or value."""
    assert argv, f"{where}: empty command"
    parsers = subparsers()
    assert argv[0] in parsers, f"{where}: subcommand {argv[0]!r} is not a command (have: {', '.join(sorted(parsers))})"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            namespace = parse(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `llm-cost-tracker {' '.join(argv)}` is rejected by the CLI: "
                    f"{err.getvalue().strip()} (exit {exc.code})")
    return namespace


def check_env_names(names: list[str], where: str) -> None:
    """Every ``LCT_*`` variable must name a Settings field (or LCT_CONFIG), else the service would ignore it."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in names:
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        setting = name[len(ENV_PREFIX):].lower()
        assert setting in fields, f"{where}: {name} is not a setting (llm_cost_tracker.config.Settings)"


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def settings_port(namespace: argparse.Namespace, env: dict[str, str], name: str) -> int:
    """The port a process listens on for ``name`` (otlp_grpc or http): flag, else env, else default."""
    value = getattr(namespace, name, None) or env.get(ENV_PREFIX + name.upper()) or getattr(Settings(), name)
    return port_of(value)


def docs(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in a rendered chart (NOTES.txt and empty documents left out)."""
    out: list[dict[str, Any]] = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    helm_python = pytest.importorskip("helm_python")
    with helm_python.Chart.load(str(CHART)) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: Any) -> Any:
    def _render(values: dict[str, Any] | None = None, name: str = "lct", namespace: str = "observability"
                ) -> dict[str, str]:
        return dict(chart.render(values or {}, name=name, namespace=namespace))

    return _render
