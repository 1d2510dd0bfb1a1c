"""Greedy fallback: one priority-rule serial SGS pass, in plain Python.

Used when the optimizer errors or overruns. It shares nothing with the vectorized decoder (so a
bug there cannot take the fallback down with it) and needs only milliseconds for hundreds of jobs.
"""

from __future__ import annotations

import time

from llm_cost_tracker.scheduler import modes as modes_mod
from llm_cost_tracker.scheduler.errors import InfeasibleError
from llm_cost_tracker.scheduler.problem import Problem, compile_problem
from llm_cost_tracker.scheduler.result import Schedule, ScheduleResult


def greedy_schedule(problem: Problem, reason: str = "") -> ScheduleResult:
    """Latest-finish-time priority rule, feasible modes preferring short durations."""
    t0 = time.perf_counter()
    a = compile_problem(problem)
    status, mode_vec, why = modes_mod.feasible_modes(a)
    if status is modes_mod.Status.INFEASIBLE:
        raise InfeasibleError(why)
    if mode_vec is None:
        return ScheduleResult(False, "Greedy fallback found no mode vector within the capacities.", None, (),
                              0.0, 0, time.perf_counter() - t0, "greedy", fallback=reason)
    modes = [int(x) for x in mode_vec]
    acts = problem.activities
    n = len(acts)
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, act in enumerate(acts):
        for s in act.successors:
            preds[s].append(i)
    caps = [r.capacity for r in problem.renewable]
    usage: list[list[int]] = []  # usage[t][r]
    finish = [0] * n
    starts = [0] * n
    done = [False] * n
    for _ in range(n):
        eligible = [i for i in range(n) if not done[i] and all(done[p] for p in preds[i])]
        j = min(eligible, key=lambda i: (int(a.lft[i]), i))
        mode = acts[j].modes[modes[j]]
        t = max((finish[p] for p in preds[j]), default=0)
        while not _fits(usage, t, mode.duration, mode.renewable, caps):
            t += 1
        while len(usage) < t + mode.duration:
            usage.append([0] * len(caps))
        for u in range(t, t + mode.duration):
            for r, need in enumerate(mode.renewable):
                usage[u][r] += need
        starts[j], finish[j], done[j] = t, t + mode.duration, True
    cost = sum(acts[i].modes[modes[i]].cost for i in range(n))
    tard = sum(acts[i].weight * max(0, finish[i] - deadline) for i in range(n)
               if (deadline := acts[i].deadline) is not None)
    sched = Schedule(tuple(starts), tuple(modes), max(finish, default=0), int(cost), float(tard))
    return ScheduleResult(True, "Greedy LFT serial SGS (fallback).", sched, (sched,), 0.0, 1,
                          time.perf_counter() - t0, "greedy", fallback=reason)


def _fits(usage: list[list[int]], t: int, dur: int, need: tuple[int, ...], caps: list[int]) -> bool:
    for u in range(t, t + dur):
        if u < len(usage) and any(usage[u][r] + need[r] > caps[r] for r in range(len(caps))):
            return False
    return True
