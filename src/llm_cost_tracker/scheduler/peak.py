"""Peak crossover cut points: the partner's densest stretch of resource use (Valls et al. 2008).

A two-point crossover copies the middle of the partner's list. On justified schedules a list is
ordered by time, so a stretch of the list is a stretch of the schedule; the peak crossover picks
the stretch where the partner packs the most resource use per time unit, the part of a schedule
most worth inheriting, instead of a random one. This module only chooses the cut points; the
crossover itself is :func:`operators.exchange`.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["peak_cuts"]


def peak_cuts(
    start: IntArray, modes: IntArray, a: Arrays, rng: np.random.Generator, *, backward: bool,
    low: float = 0.1, high: float = 0.5,
) -> IntArray:
    """``[P, 2]`` list positions of each schedule's densest time window.

    The window is ``low`` to ``high`` of the makespan long (drawn per schedule); utilisation is the
    demand over capacity summed over the resources. Positions count the activities before and in
    the window in list order: by start for forward lists, by decreasing finish for backward ones.
    """
    pop, n = start.shape
    rows = np.arange(pop)
    cols = np.arange(n)[None, :]
    d = a.dur[cols, modes]
    finish = start + d
    cap = np.maximum(a.cap, 1).astype(np.float64)
    w = (a.dem[cols, modes] / cap).sum(axis=2) if a.cap.size else np.zeros((pop, n))
    span = int(finish.max()) + 1
    diff = np.zeros((pop, span + 1))
    np.add.at(diff, (np.repeat(rows, n), start.ravel()), w.ravel())
    np.add.at(diff, (np.repeat(rows, n), finish.ravel()), -w.ravel())
    use = np.cumsum(diff, axis=1)[:, :span]
    cum = np.zeros((pop, span + 1))
    np.cumsum(use, axis=1, out=cum[:, 1:])
    makespan = finish.max(axis=1)
    length = np.maximum(1, np.floor(makespan * rng.uniform(low, high, pop))).astype(np.int64)
    t = np.arange(span)[None, :]
    end = np.minimum(t + length[:, None], span)
    dens = np.take_along_axis(cum, end, axis=1) - cum[:, :span]
    dens = np.where(t + length[:, None] <= np.maximum(makespan, length)[:, None], dens, -np.inf)
    dens = dens + rng.random(dens.shape) * 1e-9  # ties broken at random
    t1 = dens.argmax(axis=1)[:, None]
    t2 = t1 + length[:, None]
    if backward:  # lists by decreasing finish: the window's activities follow those finishing after it
        c1, c2 = (finish > t2).sum(axis=1), (finish > t1).sum(axis=1)
    else:
        c1, c2 = (start < t1).sum(axis=1), (start < t2).sum(axis=1)
    out: IntArray = np.stack([c1, c2], axis=1).astype(np.int64)
    return out
