"""Mode repair as it was before its look-ahead was compiled (issue 20), kept as a reference.

``scheduler/modes.py`` must choose exactly these modes and draw exactly the same random numbers:
the rest of a solve depends on both. This copy evaluates every single-mode change of every replica
over a capacity with numpy arrays of shape ``[replicas, n, M, K]`` per round.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.modes import excess
from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["previous_repair"]


def previous_repair(modes: IntArray, a: Arrays, rng: np.random.Generator, fallback: IntArray | None) -> IntArray:
    """Greedy single-mode changes that cut the excess, all replicas at once; stuck ones get ``fallback``."""
    if a.ncap.shape[0] == 0:
        return modes
    modes = modes.copy()
    cols = np.arange(a.n)[None, :]
    inf = np.iinfo(np.int64).max // 4
    for _ in range(2 * a.n):
        use = a.nrd[cols, modes].sum(axis=1)  # [P, K]
        exc = np.maximum(use - a.ncap, 0).sum(axis=1)
        if not (exc > 0).any():
            break
        noise = rng.random((modes.shape[0], a.n, a.dur.shape[1])) * 0.5  # drawn for all rows: same stream
        bad = np.flatnonzero(exc > 0)
        cur = a.nrd[cols, modes[bad]]  # [B, n, K]
        new_use = use[bad, None, None, :] - cur[:, :, None, :] + a.nrd[None]
        new_exc = np.maximum(new_use - a.ncap, 0).sum(axis=3).astype(np.float64)
        new_exc = np.where(a.valid[None], new_exc, inf) + noise[bad]
        flat = new_exc.reshape(bad.size, -1).argmin(axis=1)
        act, mode = np.divmod(flat, a.dur.shape[1])
        better = np.floor(new_exc.reshape(bad.size, -1)[np.arange(bad.size), flat]) < exc[bad]
        if not better.any():
            break
        modes[bad[better], act[better]] = mode[better]
    stuck = excess(modes, a) > 0
    if stuck.any() and fallback is not None:
        modes[stuck] = fallback
    return modes
