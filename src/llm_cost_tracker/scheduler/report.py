"""Renders a result as the JSON document or text table the CLI (and later the worker) prints."""

from __future__ import annotations

from typing import Any

from llm_cost_tracker.scheduler.batch import TaskBatch
from llm_cost_tracker.scheduler.problem import Problem
from llm_cost_tracker.scheduler.result import Schedule, ScheduleResult
from llm_cost_tracker.types import PICO_PER_USD

__all__ = ["PICK_RULE", "annotate_plan", "kind_of", "remote_table", "to_json", "to_table"]

PICK_RULE = (
    "least weighted tardiness; then makespan within 20% of the shortest such; then cheapest; "
    "then shortest makespan"
)


def kind_of(problem: Problem) -> str:
    """``psplib``, ``jobshop`` or ``batch`` (from the reader's metadata)."""
    return dict(problem.meta).get("format", "batch")


def to_json(problem: Problem, result: ScheduleResult) -> dict[str, Any]:
    """The JSON document of a solved instance (fields as in issue 7's Interfaces section)."""
    s = result.schedule
    assert s is not None
    doc: dict[str, Any] = {
        "instance": problem.name,
        "makespan": s.makespan,
        "schedules_evaluated": result.schedules_evaluated,
        "seconds": round(result.seconds, 4),
        "algorithm": result.algorithm,
        "fallback": result.fallback or None,
        "message": result.message,
    }
    kind = kind_of(problem)
    if kind == "psplib":
        doc["activities"] = [
            {"id": int(a.id), "mode": s.modes[i] + 1, "start": s.starts[i]} for i, a in enumerate(problem.activities)
        ]
    elif kind == "jobshop":
        doc["operations"] = [
            {"job": j, "index": k, "machine": m, "start": st} for j, k, m, st in _operations(problem, s)
        ]
    else:
        slot = problem.time_unit_seconds
        doc["makespan_seconds"] = s.makespan * slot
        doc["schedule"] = _batch_schedule(problem, s)
        doc["pareto_front"] = [
            {"makespan_seconds": f.makespan * slot, "cost_usd": f.cost / PICO_PER_USD,
             "weighted_tardiness_seconds": f.tardiness * slot}
            for f in sorted(result.front, key=lambda f: (f.makespan, f.cost))
        ]
        doc["hypervolume"] = round(result.hypervolume, 6)
        doc["pick_rule"] = PICK_RULE
    return doc


def to_table(problem: Problem, result: ScheduleResult) -> str:
    """A human-readable table of the chosen schedule."""
    s = result.schedule
    assert s is not None
    head = (f"{problem.name}: makespan {s.makespan}, {result.schedules_evaluated} schedules in "
            f"{result.seconds:.2f}s ({result.algorithm}{', fallback: ' + result.fallback if result.fallback else ''})")
    kind = kind_of(problem)
    rows: list[tuple[str, ...]]
    if kind == "jobshop":
        rows = [("job", "index", "machine", "start")]
        rows += [tuple(str(x) for x in op) for op in _operations(problem, s)]
    elif kind == "psplib":
        rows = [("id", "mode", "start", "finish")]
        rows += [(a.id, str(s.modes[i] + 1), str(s.starts[i]), str(s.starts[i] + a.modes[s.modes[i]].duration))
                 for i, a in enumerate(problem.activities)]
    else:
        head += f", cost {s.cost / PICO_PER_USD:.4f} USD, {len(result.front)} Pareto points"
        rows = [("job", "model", "start_s", "finish_s", "cost_usd")]
        rows += [(j["id"], j["model"], f"{j['start_seconds']:g}", f"{j['finish_seconds']:g}", f"{j['cost_usd']:.4f}")
                 for j in _batch_schedule(problem, s)["jobs"]]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([head, *lines])


def annotate_plan(doc: dict[str, Any], batch: TaskBatch, batch_id: str) -> dict[str, Any]:
    """Give every planned job its id ``<batch_id>/<job id>`` and its tokens, and add where inputs came from.

    Spans that carry the job id (attribute ``llm_cost_tracker.job_id``) are matched back to the plan.
    """
    schedule = doc.get("schedule")
    if schedule:
        for job, (tin, tout) in zip(schedule["jobs"], batch.tokens, strict=False):
            job["job_id"] = f"{batch_id}/{job['id']}"
            job["input_tokens"], job["output_tokens"] = tin, tout
    doc["inputs"] = batch.inputs
    return doc


def remote_table(doc: dict[str, Any]) -> str:
    """A table of a plan answered by a tracker (``GET /v1/schedules/{id}``): job, model, times, cost, id."""
    result = doc.get("result") or {}
    schedule = result.get("schedule") or {}
    head = (f"{doc.get('name')} ({doc.get('batch_id')}): makespan {schedule.get('makespan_seconds', 0):g} s, "
            f"cost {schedule.get('cost_usd', 0):.4f} USD, {len(result.get('pareto_front', []))} Pareto points")
    rows = [("job", "model", "start_s", "finish_s", "cost_usd", "job_id")]
    rows += [(j["id"], j["model"], f"{j['start_seconds']:g}", f"{j['finish_seconds']:g}", f"{j['cost_usd']:.4f}",
              j.get("job_id", "")) for j in schedule.get("jobs", [])]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join([head, *("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in rows)])


def _operations(problem: Problem, s: Schedule) -> list[tuple[int, int, int, int]]:
    out: list[tuple[int, int, int, int]] = []
    for i, a in enumerate(problem.activities):
        job, index = (int(x) for x in a.id.split("."))
        demand = a.modes[0].renewable
        out.append((job, index, demand.index(max(demand)), s.starts[i]))
    return out


def _batch_schedule(problem: Problem, s: Schedule) -> dict[str, Any]:
    slot = problem.time_unit_seconds
    jobs = []
    for i, a in enumerate(problem.activities):
        m = a.modes[s.modes[i]]
        jobs.append({
            "id": a.id, "model": m.label, "tier": m.label.partition("@")[2] or "standard",
            "start_seconds": s.starts[i] * slot,
            "finish_seconds": (s.starts[i] + m.duration) * slot, "cost_usd": m.cost / PICO_PER_USD,
            "cost_pusd": m.cost,
            "late_seconds": max(0, s.starts[i] + m.duration - a.deadline) * slot if a.deadline is not None else 0,
        })
    return {"makespan_seconds": s.makespan * slot, "cost_usd": s.cost / PICO_PER_USD,
            "weighted_tardiness_seconds": s.tardiness * slot, "jobs": jobs}
