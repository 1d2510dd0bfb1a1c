"""Shared helpers for the deploy tests: paths, the chart, and checks against the real CLI parser.

Commands rendered by the chart and the compose file are checked with ``build_parser()`` itself, so
a flag that drifts from the CLI fails here. Subcommands other engineers have not landed yet are
skipped with a reason, and the checks get stricter on their own as they land.
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

from llm_cost_tracker.cli import build_parser
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


@dataclasses.dataclass(frozen=True)
class Checked:
    """The outcome of checking one command line: parsed args, or why it could not be checked yet."""

    namespace: argparse.Namespace | None
    skipped: str = ""


def check_command(argv: list[str], where: str) -> Checked:
    """Parse ``argv`` (subcommand first) with the real parser; fail on an unknown flag or bad value.

    A subcommand that is not in ``build_parser()`` yet is reported as skipped, not failed.
    """
    assert argv, f"{where}: empty command"
    command = argv[0]
    parsers = subparsers()
    if command not in parsers:
        return Checked(None, f"{where}: subcommand {command!r} is not in build_parser() yet "
                             f"(have: {', '.join(sorted(parsers))})")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            namespace = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `llm-cost-tracker {' '.join(argv)}` is rejected by the CLI: "
                    f"{err.getvalue().strip()} (exit {exc.code})")
    return Checked(namespace)


def check_env_names(names: list[str], where: str) -> None:
    """Every ``LCT_*`` variable must name a Settings field (or LCT_CONFIG), else the service refuses to start."""
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
