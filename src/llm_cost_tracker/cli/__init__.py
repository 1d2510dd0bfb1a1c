"""The ``llm-cost-tracker`` command: a thin argparse layer over the package.

Each subcommand group lives in its own module exposing ``register(subparsers)``; a registered
parser sets ``func`` (``args -> int`` exit code) with ``set_defaults``. No other module imports the
CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add subcommands, imported lazily so one group's heavy imports do not slow the rest.
_COMMAND_MODULES = (
    "llm_cost_tracker.cli.service",
    "llm_cost_tracker.cli.kafka",
    "llm_cost_tracker.cli.query",
    "llm_cost_tracker.cli.store",
    "llm_cost_tracker.cli.pricing",
    "llm_cost_tracker.cli.schedule",
    "llm_cost_tracker.cli.scheduler_worker",
    "llm_cost_tracker.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand group that is installed."""
    parser = argparse.ArgumentParser(
        prog="llm-cost-tracker",
        description="Price LLM spans from the OpenTelemetry Collector and store their cost.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
