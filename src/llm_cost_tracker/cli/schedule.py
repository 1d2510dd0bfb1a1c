"""``llm-cost-tracker schedule solve``: solve one instance file and print the schedule.

Thin by design: reading, solving and rendering live in :mod:`llm_cost_tracker.scheduler`. With
``--from-tracker URL`` the task batch is planned by a running tracker instead (``POST /v1/schedules``,
then polled): the same prices, measured speeds and budgets as every other plan of that service, and
the plan is kept there so its job spans can be compared with it (``report --by job-batch``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add ``schedule solve`` to the top-level parser."""
    parser = subparsers.add_parser("schedule", help="plan batches of LLM jobs / solve scheduling instances")
    sub = parser.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND")
    sub.required = True
    solve = sub.add_parser("solve", help="solve a .sm/.mm PSPLIB file, a JSPLIB job-shop file or a JSON task batch")
    solve.add_argument("file", metavar="FILE", type=Path)
    solve.add_argument("--max-schedules", type=int, default=5000, metavar="N",
                       help="budget of decoded schedules (default 5000)")
    solve.add_argument("--time-limit", type=float, default=30.0, metavar="SECONDS",
                       help="wall-clock limit; past it (plus grace) the greedy fallback answers (default 30)")
    solve.add_argument("--seed", type=int, default=None, metavar="S", help="random seed for a reproducible run")
    solve.add_argument("--format", choices=("json", "table"), default="json")
    solve.add_argument("--jobshop", action="store_true", help="FILE is in the JSPLIB job-shop format")
    solve.add_argument("--from-tracker", metavar="URL",
                       help="plan the task batch on a running tracker (its HTTP address, e.g. http://127.0.0.1:9464): "
                            "prices, speeds measured from its spans and budgets from there, the plan kept there")
    solve.add_argument("--token", default=os.environ.get("LCT_TRACKER_TOKEN"), metavar="TOKEN",
                       help="bearer token for --from-tracker (env: LCT_TRACKER_TOKEN)")
    solve.set_defaults(func=_solve)


def _from_tracker(args: argparse.Namespace) -> int:
    """POST the batch, poll its answer, print it: 0 done, 2 refused/infeasible/error, 1 unreachable."""
    from llm_cost_tracker.scheduler.report import remote_table

    try:
        body = args.file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    base = args.from_tracker.rstrip("/") + "/v1/schedules"
    try:
        status, doc = _call(base, args.token, body)
        if status != 202:
            print(f"error: {args.from_tracker} answered {status}: {doc.get('error', doc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        deadline = time.monotonic() + args.time_limit + 600
        while doc.get("status") in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            status, doc = _call(f"{base}/{doc['batch_id']}", args.token)
            if status != 200:
                print(f"error: {args.from_tracker} answered {status}: {doc.get('error', doc)}", file=sys.stderr)
                return 1
    except OSError as exc:
        print(f"error: cannot reach {args.from_tracker}: {exc}", file=sys.stderr)
        return 1
    if doc.get("status") != "done":
        print(f"{doc.get('status')}: {doc.get('error')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(doc, indent=2) if args.format == "json" else remote_table(doc))
    return 0


def _call(url: str, token: str | None, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": exc.reason}


def _solve(args: argparse.Namespace) -> int:
    from llm_cost_tracker.scheduler import InfeasibleError, ParseError, Scheduler, SolveSettings
    from llm_cost_tracker.scheduler.io import read_instance
    from llm_cost_tracker.scheduler.report import to_json, to_table

    if args.max_schedules is not None and args.max_schedules <= 0:
        print("error: --max-schedules must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.time_limit is not None and args.time_limit <= 0:
        print("error: --time-limit must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.from_tracker:
        return _from_tracker(args)
    try:
        problem = read_instance(args.file, jobshop=args.jobshop)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ParseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfeasibleError as exc:
        print(f"infeasible: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    settings = SolveSettings(max_schedules=args.max_schedules, time_limit=args.time_limit, seed=args.seed)
    try:
        result = Scheduler(settings=settings).solve(problem)
    except InfeasibleError as exc:
        print(f"infeasible: {problem.name} has no feasible schedule: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not result.success or result.schedule is None:
        print(f"infeasible: {problem.name}: {result.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.format == "json":
        print(json.dumps(to_json(problem, result), indent=2))
    else:
        print(to_table(problem, result))
    return 0
