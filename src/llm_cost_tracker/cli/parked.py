"""``parked list`` and ``parked replay``: the batches the writer parked, and putting them back (docs/hardening.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from llm_cost_tracker.cli._common import add_config_flag, add_format_flag, add_store_flags, settings_from

if TYPE_CHECKING:
    from llm_cost_tracker.config import Settings
    from llm_cost_tracker.sinks.parking import ParkingLot


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parked", help="list the batches the writer parked, and replay them into the store",
                       description="A batch the store refused for good, or could not take before a shutdown "
                                   "deadline, is parked as JSON lines in DATA_DIR/parked (else in "
                                   "$TMPDIR/llm-cost-tracker-parked-UID). Once the cause is fixed, replay puts "
                                   "the spans into the store: one insert per file, deduplicated, so it is safe "
                                   "to run again.")
    actions = p.add_subparsers(dest="parked_command", metavar="ACTION")
    actions.required = True

    q = actions.add_parser("list", help="the parked files, their spans and why they were parked")
    _add_lot_flags(q)
    q.set_defaults(func=_list)

    q = actions.add_parser("replay", help="insert the parked spans (the embedded store: stop the service first)",
                           description="Insert the spans of each parked file (or of FILE...) into the store, "
                                       "leaving out those it already holds; a replayed file moves to "
                                       "replayed/ beside it, a failing one stays, and the exit code is 1.")
    q.add_argument("files", nargs="*", metavar="FILE", help="parked files to replay (default: all of them)")
    q.add_argument("--dry-run", action="store_true", help="count what would be written, change nothing")
    _add_lot_flags(q)
    q.set_defaults(func=_replay)


def _add_lot_flags(parser: argparse.ArgumentParser) -> None:
    """Where the parked files and the store are, and how the table is printed: both actions' flags."""
    parser.add_argument("--dir", dest="parked_dir", metavar="DIR",
                        help="read this parking directory only (default: DATA_DIR/parked, then the $TMPDIR "
                             "fallback; a Kafka consumer's disk fallback is the directory its log names)")
    add_config_flag(parser)
    add_store_flags(parser)
    add_format_flag(parser)


def _lot(args: argparse.Namespace) -> tuple[Settings, ParkingLot]:
    from llm_cost_tracker.sinks.parking import ParkingLot, default_fallbacks

    settings = settings_from(args)
    if args.parked_dir:
        return settings, ParkingLot(args.parked_dir)
    return settings, ParkingLot(Path(settings.data_dir) / "parked", default_fallbacks())


def _list(args: argparse.Namespace) -> int:
    from llm_cost_tracker.cli._output import render
    from llm_cost_tracker.sinks.replay import inspect

    _, lot = _lot(args)
    files = inspect(lot)
    print(render(["file", "spans", "error"], [[str(f.path), f.spans, f.error] for f in files], args.format))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from llm_cost_tracker.cli._output import render
    from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
    from llm_cost_tracker.sinks.identity import FirstArrivals
    from llm_cost_tracker.sinks.replay import replay
    from llm_cost_tracker.storage.client import StoreLocked, StoreMissing, connect

    settings, lot = _lot(args)
    paths = [Path(f) for f in args.files] or None
    if paths is None and not lot.files():
        print("llm-cost-tracker: nothing is parked", file=sys.stderr)
        return 0
    try:
        client = connect(settings.store, create=False)
    except (StoreLocked, StoreMissing) as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2
    try:
        results = replay(lot, ClickHouseSink(client).write, FirstArrivals(client), paths, dry_run=args.dry_run)
    finally:
        client.close()
    print(render(["file", "spans", "written", "already_stored", "error"],
                 [[str(r.path), r.spans, r.written, r.already_stored, r.error] for r in results], args.format))
    failed = [r for r in results if r.error]
    verb = "would write" if args.dry_run else "wrote"
    print(f"{len(results) - len(failed)} of {len(results)} file(s) replayed: {verb} "
          f"{sum(r.written for r in results)} span(s), {sum(r.already_stored for r in results)} already stored"
          + (f"; {len(failed)} failed and stay parked" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
