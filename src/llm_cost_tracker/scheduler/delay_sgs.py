"""DEV: parallel SGS with a bounded delay (parameterized active schedules, Gonçalves et al. 2008)."""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["delay_sgs"]


@compiled
def _decode(order: IntArray, modes: IntArray, dur: IntArray, dem: IntArray, preds: IntArray, cap: IntArray,
            delay: IntArray, start: IntArray) -> None:
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
        lim = delay[p]
        for j in range(n):
            placed[j] = False
            finish[j] = 0
        placed[n] = True
        count, first, t, busy_end = 0, 0, 0, 0
        while count < n:
            again = True
            while again:
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
                    if not ok:
                        continue
                    m = modes[p, j]
                    d = dur[j, m]
                    s = t
                    run = 0
                    u = t
                    while run < d and s <= t + lim:  # earliest run of d fitting slots from t
                        fits = True
                        for r in range(n_res):
                            if dem[j, m, r] > rem[r, u]:
                                fits = False
                                break
                        if fits:
                            run += 1
                        else:
                            run = 0
                            s = u + 1
                        u += 1
                    if s > t + lim:
                        continue
                    for r in range(n_res):
                        for v in range(s, s + d):
                            rem[r, v] -= dem[j, m, r]
                    start[p, j] = s
                    finish[j] = s + d
                    placed[j] = True
                    count += 1
                    busy_end = max(busy_end, s + d)
                    again = again or (d == 0 and s == t)
                while first < n and placed[order[p, first]]:
                    first += 1
            if count == n:
                break
            nxt = busy_end
            for j in range(n):
                if placed[j] and t < finish[j] < nxt:
                    nxt = finish[j]
            if nxt > t:
                t = nxt
            else:
                j = order[p, first]
                start[p, j] = t
                finish[j] = t + dur[j, modes[p, j]]
                placed[j] = True
                count += 1
                busy_end = max(busy_end, finish[j])
        for r in range(n_res):
            for u in range(min(busy_end + 1, length + 1)):
                rem[r, u] = cap[r]


def delay_sgs(order: IntArray, modes: IntArray, a: Arrays, delay: IntArray, *, reverse: bool = False) -> IntArray:
    start = np.zeros(order.shape, np.int64)
    _decode(np.ascontiguousarray(order, np.int64), np.ascontiguousarray(modes, np.int64), a.dur, a.dem,
            a.succ_pad if reverse else a.pred_pad, a.cap, np.ascontiguousarray(delay, np.int64), start)
    return start
