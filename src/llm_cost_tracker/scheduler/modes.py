"""Non-renewable resources (money budget, PSPLIB N-resources): feasibility of mode vectors.

Mode choices alone decide non-renewable consumption, so feasibility is a multi-dimensional knapsack
question settled before scheduling: exactly by a reachability table when the capacities are small,
by bounds otherwise, and repaired per replica with a vectorized greedy descent.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.scheduler.problem import Arrays, BoolArray, FloatArray, IntArray

_DP_STATES = 2_000_000


class Status(Enum):
    """Whether some mode vector respects every non-renewable capacity."""

    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"


def excess(modes: IntArray, a: Arrays) -> IntArray:
    """Total over-consumption of non-renewable resources of each mode vector ``[P, n] -> [P]``."""
    if a.ncap.shape[0] == 0:
        return np.zeros(modes.shape[0], np.int64)
    use = a.nrd[np.arange(a.n)[None, :], modes].sum(axis=1)
    out: IntArray = np.maximum(use - a.ncap, 0).sum(axis=1)
    return out


def shortest_modes(a: Arrays) -> IntArray:
    """Per activity, the valid mode with the shortest duration."""
    return np.asarray(np.where(a.valid, a.dur, np.iinfo(np.int64).max).argmin(axis=1), np.int64)


def feasible_modes(a: Arrays) -> tuple[Status, IntArray | None, str]:
    """A mode vector within every capacity, whether one exists, and why not if it does not."""
    if not a.valid.any(axis=1).all():
        bad = int(np.flatnonzero(~a.valid.any(axis=1))[0])
        return Status.INFEASIBLE, None, f"activity #{bad + 1} has no mode within the renewable capacities"
    k = a.ncap.shape[0]
    if k == 0:
        return Status.FEASIBLE, shortest_modes(a), ""
    big = np.iinfo(np.int64).max // 4
    least = np.where(a.valid[:, :, None], a.nrd, big).min(axis=1).sum(axis=0)
    if (least > a.ncap).any():
        r = int(np.flatnonzero(least > a.ncap)[0])
        return (
            Status.INFEASIBLE,
            None,
            f"non-renewable resource #{r + 1}: even the least-consuming modes need {int(least[r])}, "
            f"capacity is {int(a.ncap[r])}",
        )
    if k == 1:
        return Status.FEASIBLE, np.where(a.valid, a.nrd[:, :, 0], big).argmin(axis=1), ""
    states = int(np.prod(a.ncap + 1))
    if states * (a.n + 1) > _DP_STATES * 20 or states > _DP_STATES:
        return Status.UNKNOWN, None, ""
    return _reachability(a)


def _reachability(a: Arrays) -> tuple[Status, IntArray | None, str]:
    """Exact table of reachable consumption vectors, keeping the least total duration per state.

    The backtracked vector is the feasible one with the smallest sum of durations: a good start.
    """
    shape = tuple(int(c) + 1 for c in a.ncap)
    inf = np.iinfo(np.int64).max // 4
    layers = [np.full(shape, inf, np.int64)]
    layers[0][(0,) * len(shape)] = 0
    for i in range(a.n):
        prev, cur = layers[-1], np.full(shape, inf, np.int64)
        for m in np.flatnonzero(a.valid[i]):
            d = a.nrd[i, m]
            if (d >= a.ncap + 1).any():
                continue
            dst = tuple(slice(int(x), None) for x in d)
            src = tuple(slice(0, s - int(x)) for s, x in zip(shape, d, strict=True))
            np.minimum(cur[dst], prev[src] + a.dur[i, m], out=cur[dst])
        cur[cur >= inf] = inf
        layers.append(cur)
    if not (layers[-1] < inf).any():
        return Status.INFEASIBLE, None, "no combination of modes fits the non-renewable capacities"
    state = np.array(np.unravel_index(int(layers[-1].argmin()), shape))
    out = np.zeros(a.n, np.int64)
    for i in range(a.n - 1, -1, -1):
        target = layers[i + 1][tuple(state)]
        for m in np.flatnonzero(a.valid[i]):
            prev_state = state - a.nrd[i, m]
            if (prev_state >= 0).all() and layers[i][tuple(prev_state)] + a.dur[i, m] == target:
                out[i] = m
                state = prev_state
                break
    return Status.FEASIBLE, out, ""


def repair(modes: IntArray, a: Arrays, rng: np.random.Generator, fallback: IntArray | None) -> IntArray:
    """Greedy single-mode changes that cut the excess, all replicas at once; stuck ones get ``fallback``.

    Each round, every replica over a capacity makes the one change (activity, mode) with the least
    excess after it, ties broken by noise in [0, 0.5), if that cuts its excess. The noise is drawn
    for all replicas, and the round's look-ahead over ``[n, M]`` changes is a compiled loop
    (:func:`_repair_round`): a random start population needs ~200 rounds on a 1,000-job batch.
    """
    if a.ncap.shape[0] == 0:
        return modes
    modes = np.ascontiguousarray(modes, np.int64).copy()
    for _ in range(2 * a.n):
        exc = excess(modes, a)
        if not (exc > 0).any():
            break
        noise = rng.random((modes.shape[0], a.n, a.dur.shape[1]))  # drawn for all rows: same stream
        if not _repair_round(modes, exc, noise, a.nrd, a.ncap, a.valid):
            break
    stuck = excess(modes, a) > 0
    if stuck.any() and fallback is not None:
        modes[stuck] = fallback
    return modes


_OUT = float(np.iinfo(np.int64).max // 4)
"""The look-ahead's value of an invalid mode: never chosen while a valid one exists."""


@compiled
def _repair_round(
    modes: IntArray, exc: IntArray, noise: FloatArray, nrd: IntArray, ncap: IntArray, valid: BoolArray
) -> bool:
    """One round of :func:`repair` in place; False when no replica over a capacity can cut its excess.

    For replica ``p`` over a capacity the value of changing activity ``i`` to mode ``m`` is the
    excess after the change plus ``noise[p, i, m] / 2`` (``_OUT`` for an invalid mode); the first
    least value over ``(i, m)`` in row-major order is taken if its integer part is below the
    current excess. The same float operations as a vectorized round, so the same choices.
    """
    pop, n = modes.shape
    n_modes = nrd.shape[1]
    n_res = ncap.shape[0]
    use = np.zeros(n_res, np.int64)
    moved = False
    for p in range(pop):
        if exc[p] <= 0:
            continue
        for r in range(n_res):
            use[r] = 0
        for i in range(n):
            for r in range(n_res):
                use[r] += nrd[i, modes[p, i], r]
        best = np.inf
        best_i = 0
        best_m = 0
        for i in range(n):
            now = modes[p, i]
            for m in range(n_modes):
                if valid[i, m]:
                    over = 0
                    for r in range(n_res):
                        over += max(use[r] - nrd[i, now, r] + nrd[i, m, r] - ncap[r], 0)
                    value = float(over) + noise[p, i, m] * 0.5
                else:
                    value = _OUT + noise[p, i, m] * 0.5
                if value < best:
                    best, best_i, best_m = value, i, m
        if np.floor(best) < exc[p]:
            modes[p, best_i] = best_m
            moved = True
    return moved
