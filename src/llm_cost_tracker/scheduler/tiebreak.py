"""DEV: secondary measures for equal makespans."""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, FloatArray, IntArray

__all__ = ["tie_measure"]


def tie_measure(kind: str, start: IntArray, modes: IntArray, a: Arrays, backward: bool, f: FloatArray) -> FloatArray:
    """Smaller is preferred."""
    cols = np.arange(a.n)[None, :]
    d = a.dur[cols, modes]
    finish = start + d
    cmax = finish.max(axis=1, keepdims=True)
    if kind == "end":  # activities at the tight end: finishing at Cmax (forward) / starting at 0 (backward)
        at = (start == 0) & (d > 0) if backward else (finish == cmax) & (d > 0)
        return at.sum(axis=1).astype(np.float64)
    if kind == "endwork":  # work (demand/cap x overlap) within the last 10% at the tight end
        cap = np.maximum(a.cap, 1).astype(np.float64)
        w = (a.dem[cols, modes] / cap).sum(axis=2)
        k = np.maximum(1, cmax // 10)
        if backward:
            ov = np.clip(np.minimum(finish, k) - start, 0, None)
        else:
            ov = np.clip(finish - np.maximum(start, cmax - k), 0, None)
        return (w * ov).sum(axis=1)
    if kind == "sum":  # compactness toward the justified side
        val = (cmax - start).sum(axis=1) if backward else finish.sum(axis=1)
        return val.astype(np.float64)
    if kind == "far":  # minus the mean start distance to the best candidate (first on ties)
        best = int(np.argmin(f))
        return -np.abs(start - start[best][None, :]).mean(axis=1).astype(np.float64)
    raise ValueError(kind)
