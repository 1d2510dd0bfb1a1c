"""Elitist (mu + lambda) survivor selection over parents and children, without duplicate schedules.

Used instead of per-slice Metropolis acceptance when the problem has one objective (makespan): at a
budget of a few thousand schedules, letting every child compete with the whole population spends
the proposals on the good part of it, as the genetic algorithms of the RCPSP literature do
(Hartmann 1998; Debels & Vanhoucke 2007). Duplicates are dropped first so the population keeps
distinct schedules; children come first, so on equal makespans the search drifts to new ones.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import FloatArray, IntArray

__all__ = ["survivors"]


def survivors(f: FloatArray, start: IntArray, modes: IntArray, size: int) -> IntArray:
    """Indices of the ``size`` best candidates by ``f``, distinct (start, modes) pairs first.

    Candidates are in priority order (children before parents): ties in ``f`` keep that order. When
    fewer than ``size`` candidates are distinct, the best duplicates fill the rest.
    """
    key = np.concatenate([start, modes], axis=1)
    # one 64-bit fingerprint per row (wrapping products with fixed odd multipliers): a 1-D unique is
    # ~10x cheaper than np.unique(axis=0), and two distinct schedules colliding is ~2^-64 likely
    mult: IntArray = np.random.default_rng(key.shape[1]).integers(1, 2**62, (key.shape[1],), dtype=np.int64)
    mult |= 1
    fingerprint: IntArray = np.asarray((key * mult[None, :]).sum(axis=1), np.int64)
    _, first = np.unique(fingerprint, return_index=True)
    distinct = np.zeros(f.shape[0], bool)
    distinct[first] = True
    rank = np.lexsort((np.arange(f.shape[0]), f, ~distinct))
    out: IntArray = rank[:size]
    return out
