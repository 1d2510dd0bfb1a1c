"""Picks the reader for an instance file from its suffix (or content), for the CLI and worker."""

from __future__ import annotations

from pathlib import Path

from llm_cost_tracker.scheduler.batch import CostFn, check_budget, parse_batch
from llm_cost_tracker.scheduler.errors import ParseError
from llm_cost_tracker.scheduler.jobshop import parse_jobshop
from llm_cost_tracker.scheduler.problem import Problem
from llm_cost_tracker.scheduler.psplib import parse_psplib


def read_instance(path: str | Path, jobshop: bool = False, cost_of: CostFn | None = None) -> Problem:
    """Read ``.sm``/``.mm`` (PSPLIB), a job-shop file (``jobshop=True``) or a JSON task batch.

    Raises:
        ParseError: malformed or unrecognised file (message names the line).
        InfeasibleError: a task batch whose budget is below its cheapest plan.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8", errors="replace")
    suffix = p.suffix.lower()
    if jobshop:
        return parse_jobshop(text, source=str(p), name=p.stem)
    if suffix in (".sm", ".mm") or "PRECEDENCE RELATIONS" in text.upper():
        return parse_psplib(text, source=str(p), name=p.stem)
    if suffix == ".json" or text.lstrip().startswith("{"):
        batch = parse_batch(text, source=str(p), cost_of=cost_of)
        check_budget(batch)
        return batch.problem
    raise ParseError(str(p), None, "unknown format: use .sm/.mm, .json, or --jobshop for JSPLIB files")
