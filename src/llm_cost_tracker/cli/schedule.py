"""``llm-cost-tracker schedule solve``: solve one instance file and print the schedule.

Thin by design: reading, solving and rendering live in :mod:`llm_cost_tracker.scheduler`.
"""

from __future__ import annotations

import argparse
import json
import sys
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
    solve.set_defaults(func=_solve)


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
