"""Independent feasibility checker: plain loops over the problem dataclasses.

Deliberately shares no code with the vectorized decoder, so a decoder bug cannot hide itself;
tests and the benchmark run every reported schedule through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_cost_tracker.scheduler.problem import Problem


def check_schedule(problem: Problem, starts: Sequence[int], modes: Sequence[int]) -> list[str]:
    """Every violated constraint as a message; an empty list means the schedule is feasible.

    Args:
        problem: the instance.
        starts: start time of each activity (by activity index).
        modes: 0-based mode index of each activity.
    """
    acts = problem.activities
    if len(starts) != len(acts) or len(modes) != len(acts):
        return [f"expected {len(acts)} starts and modes, got {len(starts)} and {len(modes)}"]
    errors: list[str] = []
    for i, act in enumerate(acts):
        if not 0 <= modes[i] < len(act.modes):
            errors.append(f"activity {act.id}: mode index {modes[i]} does not exist")
        if int(starts[i]) != starts[i] or starts[i] < 0:
            errors.append(f"activity {act.id}: start {starts[i]} is not a non-negative integer")
    if errors:
        return errors
    dur = [acts[i].modes[modes[i]].duration for i in range(len(acts))]
    for i, act in enumerate(acts):
        for s in act.successors:
            if starts[s] < starts[i] + dur[i]:
                errors.append(
                    f"activity {acts[s].id} starts at {starts[s]} before predecessor {act.id} "
                    f"finishes at {starts[i] + dur[i]}"
                )
    for r, res in enumerate(problem.renewable):
        usage: dict[int, int] = {}
        for i, act in enumerate(acts):
            need = act.modes[modes[i]].renewable[r]
            for t in range(int(starts[i]), int(starts[i]) + dur[i]):
                usage[t] = usage.get(t, 0) + need
        for t in sorted(usage):
            if usage[t] > res.capacity:
                errors.append(f"resource {res.name}: {usage[t]} used at t={t}, capacity {res.capacity}")
                break
    for k, res in enumerate(problem.nonrenewable):
        total = sum(act.modes[modes[i]].nonrenewable[k] for i, act in enumerate(acts))
        if total > res.capacity:
            errors.append(f"resource {res.name}: {total} consumed, capacity {res.capacity}")
    return errors


def makespan(problem: Problem, starts: Sequence[int], modes: Sequence[int]) -> int:
    """Latest finish time of the schedule."""
    return max(
        (int(starts[i]) + a.modes[modes[i]].duration for i, a in enumerate(problem.activities)), default=0
    )
