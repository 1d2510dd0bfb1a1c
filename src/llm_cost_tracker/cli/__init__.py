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
from importlib import metadata

# Modules that add subcommands, imported lazily so one group's heavy imports do not slow the rest.
_COMMAND_MODULES = (
    "llm_cost_tracker.cli.service",
    "llm_cost_tracker.cli.kafka",
    "llm_cost_tracker.cli.query",
    "llm_cost_tracker.cli.store",
    "llm_cost_tracker.cli.parked",
    "llm_cost_tracker.cli.pricing",
    "llm_cost_tracker.cli.schedule",
    "llm_cost_tracker.cli.scheduler_worker",
    "llm_cost_tracker.cli.demo",
)


_GLOBAL_STORE_FLAGS = (("--data-dir", "data_dir", "DIR"), ("--clickhouse-url", "clickhouse_url", "URL"),
                       ("--config", "config", "FILE"))
"""Store flags also accepted before the command (``llm-cost-tracker --data-dir X report``); the command's
own flag wins when both are given."""


def _version() -> str:
    try:
        return metadata.version("llm-cost-tracker")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand group that is installed."""
    parser = argparse.ArgumentParser(
        prog="llm-cost-tracker",
        description="Price LLM spans from the OpenTelemetry Collector and store their cost.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    for flag, dest, metavar in _GLOBAL_STORE_FLAGS:
        parser.add_argument(flag, dest=f"global_{dest}", metavar=metavar, help=f"same as the command's {flag}")
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


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser that was chosen, so its own usage is shown for its own mistakes."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, actions[0].dest, None) if actions and actions[0].dest else None
        if chosen is None or chosen not in actions[0].choices:
            return parser
        parser = actions[0].choices[chosen]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported with the usage of the command it was given to."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    for _flag, dest, _metavar in _GLOBAL_STORE_FLAGS:
        given = getattr(args, f"global_{dest}")
        delattr(args, f"global_{dest}")
        if given is None:
            continue
        if not hasattr(args, dest):
            _innermost(parser, args).error(f"{_flag} does not apply to this command")
        if getattr(args, dest) is None:
            setattr(args, dest, given)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parse(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
