"""Parallel schedule generation scheme: non-delay schedules, the list as a priority (issue 20).

The serial SGS places activities in list order, each at its earliest feasible start, and can build
every active schedule, an optimal one among them. The parallel SGS (Kelley 1963; Kolisch 1996) walks
time instead: at each decision time it starts, in list order, every eligible activity (predecessors
finished) that fits, then moves to the next finish. It builds non-delay schedules only, which may
miss every optimum but are on average shorter: sampling with it beats the serial SGS on large
projects at small budgets, and Hartmann's (2002) self-adapting GA chooses between the two per
member. ``AnnealingSettings.parallel`` decodes that share of the elitist search's proposals with it
(one schedule each, as any SGS pass); docs/scheduler.md has what it measured.

Checking only the decision time is enough: every activity already placed started at or before it,
so the demand on the resources can only fall after it.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["parallel_sgs"]


@compiled
def _decode(order: IntArray, modes: IntArray, dur: IntArray, dem: IntArray, preds: IntArray, cap: IntArray,
            start: IntArray) -> None:
    """Fill ``start[p, j]``: non-delay schedules with list position as the priority."""
    pop, n = order.shape
    n_res = cap.shape[0]
    width = preds.shape[1]
    length = 1
    for p in range(pop):
        total = 0
        for j in range(n):
            total += dur[j, modes[p, j]]
        length = max(length, total + 1)
    rem = np.empty((max(n_res, 1), length + 1), np.int64)
    for r in range(n_res):
        for u in range(length + 1):
            rem[r, u] = cap[r]
    finish = np.zeros(n + 1, np.int64)
    placed = np.zeros(n + 1, np.bool_)
    for p in range(pop):
        for j in range(n):
            placed[j] = False
            finish[j] = 0
        placed[n] = True  # the padding "predecessor"
        count, first, t, busy_end = 0, 0, 0, 0
        while count < n:
            again = True
            while again:  # zero durations finish at t: their successors are eligible at t too
                again = False
                for i in range(first, n):
                    j = order[p, i]
                    if placed[j]:
                        continue
                    ok = True
                    for c in range(width):
                        q = preds[j, c]
                        if not placed[q] or finish[q] > t:
                            ok = False
                            break
                    m = modes[p, j]
                    for r in range(n_res):
                        if not ok or dem[j, m, r] > rem[r, t]:
                            ok = False
                            break
                    if not ok:
                        continue
                    d = dur[j, m]
                    for r in range(n_res):
                        for u in range(t, t + d):
                            rem[r, u] -= dem[j, m, r]
                    start[p, j] = t
                    finish[j] = t + d
                    placed[j] = True
                    count += 1
                    busy_end = max(busy_end, t + d)
                    again = again or d == 0
                while first < n and placed[order[p, first]]:
                    first += 1
            if count == n:
                break
            nxt = busy_end  # the next decision time: the earliest finish after t
            for j in range(n):
                if placed[j] and t < finish[j] < nxt:
                    nxt = finish[j]
            if nxt > t:
                t = nxt
            else:  # nothing runs and nothing fits: a mode over a capacity, which no operator draws;
                j = order[p, first]  # placed at t unchecked so that the loop ends (not a schedule)
                start[p, j] = t
                finish[j] = t + dur[j, modes[p, j]]
                placed[j] = True
                count += 1
                busy_end = max(busy_end, finish[j])
        for r in range(n_res):
            for u in range(min(busy_end + 1, length + 1)):
                rem[r, u] = cap[r]


def parallel_sgs(order: IntArray, modes: IntArray, a: Arrays, *, reverse: bool = False) -> IntArray:
    """Start times ``[P, n]`` of the parallel SGS (as :func:`sgs.serial_sgs`, ``reverse`` included)."""
    start = np.zeros(order.shape, np.int64)
    _decode(
        np.ascontiguousarray(order, np.int64),
        np.ascontiguousarray(modes, np.int64),
        a.dur,
        a.dem,
        a.succ_pad if reverse else a.pred_pad,
        a.cap,
        start,
    )
    return start
