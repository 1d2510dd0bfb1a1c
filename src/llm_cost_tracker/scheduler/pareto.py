"""Pareto scoring over (makespan, total cost, weighted tardiness), all minimised.

Array in, array out, in the way pymoo's ``find_non_dominated`` works: a vectorized dominance matrix
instead of pairwise Python loops. Includes the exact hypervolume and the default pick rule.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from llm_cost_tracker.scheduler.problem import FloatArray, IntArray

ArrayLike = npt.ArrayLike


def dominance_matrix(f: ArrayLike) -> npt.NDArray[np.bool_]:
    """``D[i, j]`` is True when row i dominates row j (no worse everywhere, better somewhere)."""
    a = np.asarray(f, dtype=np.float64)
    le = (a[:, None, :] <= a[None, :, :]).all(axis=2)
    lt = (a[:, None, :] < a[None, :, :]).any(axis=2)
    out: npt.NDArray[np.bool_] = np.logical_and(le, lt)
    return out


def find_non_dominated(f: ArrayLike) -> IntArray:
    """Indices of the rows no other row dominates (duplicates are all kept)."""
    a = np.asarray(f, dtype=np.float64)
    if a.shape[0] == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(~dominance_matrix(a).any(axis=0)).astype(np.int64)


def non_dominated_rank(f: ArrayLike) -> IntArray:
    """Front number of every row (0 = non-dominated), by peeling fronts off the dominance matrix."""
    a = np.asarray(f, dtype=np.float64)
    dom = dominance_matrix(a)
    rank = np.full(a.shape[0], -1, np.int64)
    alive = np.ones(a.shape[0], bool)
    level = 0
    while alive.any():
        front = alive & ~(dom[alive].any(axis=0))
        rank[front] = level
        alive &= ~front
        level += 1
    return rank


def unique_front(f: ArrayLike) -> IntArray:
    """Indices of the non-dominated rows with duplicate objective vectors removed (first kept)."""
    a = np.asarray(f, dtype=np.float64)
    nd = find_non_dominated(a)
    _, first = np.unique(a[nd], axis=0, return_index=True)
    return np.sort(nd[first])


def hypervolume(f: ArrayLike, ref: ArrayLike) -> float:
    """Exact volume dominated by the points and bounded by ``ref`` (points beyond ref ignored).

    Slices along the first objective and sums 2-D areas (each computed by a sorted sweep); exact for
    any dimension up to 3, which is all the scheduler needs.
    """
    a = np.asarray(f, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != r.shape[0] or not 1 <= r.shape[0] <= 3:
        raise ValueError("hypervolume needs an [N, d] array with 1 <= d <= 3 and a matching ref")
    a = a[(a < r).all(axis=1)]
    if a.shape[0] == 0:
        return 0.0
    if r.shape[0] == 1:
        return float(r[0] - a[:, 0].min())
    if r.shape[0] == 2:
        return _area(a, r)
    xs = np.unique(a[:, 0])
    bounds = np.append(xs[1:], r[0])
    total = 0.0
    for x, nxt in zip(xs, bounds, strict=True):
        total += (nxt - x) * _area(a[a[:, 0] <= x][:, 1:], r[1:])
    return float(total)


def _area(a: FloatArray, r: FloatArray) -> float:
    pts = a[np.lexsort((a[:, 1], a[:, 0]))]
    area, best_y = 0.0, r[1]
    for i in range(pts.shape[0]):
        x, y = pts[i, 0], pts[i, 1]
        if y < best_y:
            area += (r[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def reference_point(f: ArrayLike) -> FloatArray:
    """Nadir of the set plus 10% of its range (plus 1), so every front point adds volume."""
    a = np.asarray(f, dtype=np.float64)
    hi, lo = a.max(axis=0), a.min(axis=0)
    return np.asarray(hi + 0.1 * (hi - lo) + 1.0, dtype=np.float64)


def pick_default(f: ArrayLike, makespan_slack: float = 0.2) -> int:
    """Row index of the default schedule among front points ``[makespan, cost, tardiness]``.

    Rule: keep the rows with the least weighted tardiness (zero when every deadline can be met);
    among those, keep the ones whose makespan is within ``makespan_slack`` (20%) of the shortest
    one; pick the cheapest, ties broken by shorter makespan. So money is saved only where it costs
    no lateness and little extra wall time.
    """
    a = np.asarray(f, dtype=np.float64)
    if a.shape[0] == 0:
        raise ValueError("empty front")
    idx = np.flatnonzero(a[:, 2] <= a[:, 2].min() + 1e-9)
    shortest = a[idx, 0].min()
    idx = idx[a[idx, 0] <= shortest * (1.0 + makespan_slack) + 1e-9]
    best = np.lexsort((a[idx, 0], a[idx, 1]))[0]
    return int(idx[best])


def normalized_hypervolume(front: FloatArray) -> float:
    """Hypervolume of the front scaled to the unit cube per objective, reference point 1.1."""
    lo, hi = front.min(axis=0), front.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return hypervolume((front - lo) / span, np.full(3, 1.1))
