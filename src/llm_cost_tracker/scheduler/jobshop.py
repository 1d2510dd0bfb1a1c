"""Reader for JSPLIB job-shop files, mapped onto the project model.

First data line ``jobs machines``, then one line per job of ``machine duration`` pairs (0-based
machines); ``#`` lines are comments. Each operation becomes an activity needing one unit of its
machine (capacity 1), chained after the previous operation of its job.
"""

from __future__ import annotations

from pathlib import Path

from llm_cost_tracker.scheduler.errors import ParseError
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource


def read_jobshop(path: str | Path) -> Problem:
    """Parse a JSPLIB file from disk."""
    p = Path(path)
    return parse_jobshop(p.read_text(encoding="utf-8", errors="replace"), source=str(p), name=p.stem)


def parse_jobshop(text: str, source: str = "<jobshop>", name: str = "jobshop") -> Problem:
    """Parse JSPLIB text; activity ids are ``"job.index"`` (0-based)."""
    rows: list[tuple[int, list[int]]] = []
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            rows.append((no, [int(t) for t in stripped.split()]))
        except ValueError:
            raise ParseError(source, no, f"expected integers, got {stripped!r}") from None
    if not rows or len(rows[0][1]) != 2:
        raise ParseError(source, rows[0][0] if rows else None, "first line must be 'jobs machines'")
    jobs, machines = rows[0][1]
    if jobs <= 0 or machines <= 0:
        raise ParseError(source, rows[0][0], "jobs and machines must be positive")
    if len(rows) - 1 < jobs:
        raise ParseError(source, rows[-1][0], f"expected {jobs} job lines, found {len(rows) - 1}")
    acts: list[Activity] = []
    for j in range(jobs):
        no, toks = rows[1 + j]
        if len(toks) != 2 * machines:
            raise ParseError(source, no, f"job {j}: expected {machines} 'machine duration' pairs")
        for k in range(machines):
            machine, duration = toks[2 * k], toks[2 * k + 1]
            if not 0 <= machine < machines or duration < 0:
                raise ParseError(source, no, f"job {j} operation {k}: bad machine or duration")
            demand = tuple(1 if r == machine else 0 for r in range(machines))
            succ = (len(acts) + 1,) if k + 1 < machines else ()
            acts.append(
                Activity(id=f"{j}.{k}", modes=(Mode(duration=duration, renewable=demand),), successors=succ)
            )
    return Problem(
        name=name,
        activities=tuple(acts),
        renewable=tuple(Resource(f"M{m}", 1) for m in range(machines)),
        meta=(("format", "jobshop"), ("jobs", str(jobs)), ("machines", str(machines))),
    )
