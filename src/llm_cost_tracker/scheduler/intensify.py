"""Neighbours of the best schedules, for the elitist search's second phase.

The hybrid genetic algorithm of Valls, Ballestín & Quintanilla (2008) rebuilds its population half
way through from the neighbourhood of the best schedule found and continues the search there. By
then our population has collapsed onto one or two makespans (64 members, ~78 generations of a j120
instance at 5,000 schedules), so the rebuild does not cost diversity that was still there; it trades
the drift of many near-copies for fresh, nearby variation of the best. The search waits for that
collapse (``AnnealingSettings.intensify_spread``): a short run rebuilt too early loses. An option,
off by default (``intensify_at``): on top of two shifts per proposal it stayed within seed noise.

A neighbour is the best schedule's list with every activity's time moved by a random amount of at
most ``noise`` mean durations before sorting: activities that start (for a backward list, finish)
within a few slots of each other may swap, distant ones keep their order, so the decoded schedule
stays close to the original. A noisy key can put an activity before one of its predecessors, so the
keys are raised along the precedence graph first and every list is feasible.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["neighbour_lists"]


def neighbour_lists(
    start: IntArray, modes: IntArray, a: Arrays, rng: np.random.Generator, noise: float, *, backward: bool
) -> IntArray:
    """``[P, n]`` precedence-feasible lists of the schedules with their times perturbed.

    Forward lists order by start plus noise, backward lists (feasible for the reversed graph) by
    decreasing finish plus noise; the noise is uniform in ``±noise`` times the mean duration of the
    activities that take time. ``noise`` 0 gives the schedules' own lists (``directions.list_of``).
    """
    pop, n = start.shape
    d = a.dur[np.arange(n)[None, :], modes]
    width = noise * float(d[d > 0].mean()) if noise > 0 and (d > 0).any() else 0.0
    key = np.zeros((pop, n + 1))
    key[:, :n] = -(start + d) if backward else start
    if width > 0:
        key[:, :n] += rng.uniform(-width, width, (pop, n))
    key[:, :n] += (-a.rank if backward else a.rank)[None, :] / (4.0 * n)  # ties by rank, < 1 slot
    key[:, n] = -np.inf  # the padding predecessor
    preds = a.succ_pad if backward else a.pred_pad
    topo = np.argsort(a.rank)
    for j in topo[::-1] if backward else topo:  # each key above its (direction's) predecessors' keys
        key[:, j] = np.maximum(key[:, j], key[:, preds[j]].max(axis=1) + 1e-6)
    out: IntArray = np.argsort(key[:, :n], axis=1, kind="stable")
    return out
