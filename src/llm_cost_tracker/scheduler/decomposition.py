"""Decomposition: re-solve a time window of the best schedule against its boundary (Debels & Vanhoucke 2007).

A window of consecutive activities of a schedule (by start) is a sub-project. Everything outside it
stays where it is, so the sub-project sees what the outside leaves: the residual capacity profile
over time, release times from its predecessors outside the window and due times from its successors
outside it (and the schedule's makespan). Two earlier attempts re-solved a window at full capacity
and lost their gains when the window was put back; here every sub-schedule decoded is feasible for
the whole schedule by construction, so the result is a valid schedule of no greater makespan.

The sub-project is searched from the orders other schedules of the population give its activities,
then with shifts of the best sub-list, each proposal decoded by the serial SGS on the residual
profile (:func:`_decode_window`; a sub-project decode counts as one whole schedule in the budget)
and scored by the window's last finish, then by its summed finish times. An improved window is
followed by one forward decode of the whole schedule so the activities after it can move into the
room it left. Measured on j120 it does not beat the plain elitist search (docs/scheduler.md): while
the search still improves, the decodes it takes cost more than it gains, and late in the run it is
even. It is therefore off by default (``AnnealingSettings.decompose_every``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.scheduler import operators as ops
from llm_cost_tracker.scheduler.problem import Arrays, IntArray
from llm_cost_tracker.scheduler.sgs import order_of, serial_sgs

__all__ = ["improve_window"]


@compiled
def _decode_window(
    order: IntArray,
    modes: IntArray,
    dur: IntArray,
    need_r: IntArray,
    need_q: IntArray,
    need_k: IntArray,
    preds: IntArray,
    profile: IntArray,
    finish0: IntArray,
    start: IntArray,
) -> None:
    """Serial SGS of window lists ``order[p, :w]`` (activity indices) on a residual ``profile``.

    ``finish0[j]`` is the fixed finish of every activity outside the window (0 for the padding entry
    ``n``); a window activity's earliest start is the latest finish of its predecessors, inside
    (already placed: the list is precedence-feasible) or outside. ``profile[r, u]`` is the capacity
    the outside leaves; it must be long enough that every window activity fits (past the outside's
    end it is the full capacity). ``start[p, i]`` receives the start of ``order[p, i]``.
    """
    pop, w = order.shape
    n_res, length = profile.shape
    width = preds.shape[1]
    rem = np.empty((max(n_res, 1), length), np.int64)
    finish = np.empty(finish0.shape[0], np.int64)
    for p in range(pop):
        for r in range(n_res):
            for u in range(length):
                rem[r, u] = profile[r, u]
        for j in range(finish0.shape[0]):
            finish[j] = finish0[j]
        for i in range(w):
            j = order[p, i]
            m = modes[j]
            d = dur[j, m]
            t = 0
            for c in range(width):
                t = max(t, finish[preds[j, c]])
            k = need_k[j, m]
            if d > 0 and k > 0:
                run = 0
                u = t
                while run < d and u < length:
                    fits = True
                    for c in range(k):
                        if rem[need_r[j, m, c], u] < need_q[j, m, c]:
                            fits = False
                            break
                    run = run + 1 if fits else 0
                    u += 1
                t = u - run
                for c in range(k):
                    q = need_q[j, m, c]
                    for u in range(t, t + d):
                        rem[need_r[j, m, c], u] -= q
            start[p, i] = t
            finish[j] = t + d


def improve_window(
    start: IntArray, modes: IntArray, a: Arrays, rng: np.random.Generator, decodes: int,
    *, low: float = 0.1, high: float = 0.3, tail: float = 0.0, valley: float = 0.0, rounds: int = 4,
    left_shift: bool = True, donors: IntArray | None = None,
) -> tuple[IntArray, int]:
    """A schedule no longer than ``start`` with one window re-solved, and the decodes spent (at most
    ``decodes``, each counted by the caller as one schedule).

    ``start``/``modes`` are one schedule ``[n]``. The window is ``low`` to ``high`` of the activities,
    consecutive by start: the last ones with probability ``tail``, those around the least used
    stretch of time with ``valley``, else anywhere. It is searched in ``rounds`` batches: the first
    orders the window as ``donors`` (other schedules' start times ``[K, n]``) do, the others shift one
    to three activities of the best sub-list so far. With ``left_shift`` one decode is kept back: an
    improved window is followed by a forward decode of the whole schedule's list (by start), kept if
    it is no longer, so the activities after the window can move into the room it left.
    """
    n = a.n
    d = a.dur[np.arange(n), modes]
    finish = start + d
    makespan = int(finish.max())
    order = np.lexsort((a.rank, start))
    w = int(min(n, max(2, round(n * rng.uniform(low, high)))))
    draw = rng.random()
    if draw < tail:
        i1 = n - w
    elif draw < tail + valley:
        i1 = _valley(start, finish, modes, a, makespan, w)
    else:
        i1 = int(rng.integers(0, n - w + 1))
    window = order[i1:i1 + w]
    inside = np.zeros(n + 1, bool)
    inside[window] = True
    # what the outside leaves: capacity minus the outside's demand over time, full past its end
    length = makespan + int(d[window].sum()) + 1
    profile = np.repeat(a.cap[:, None], length, axis=1).astype(np.int64)
    dem = a.dem[np.arange(n), modes]  # [n, R]
    for j in np.flatnonzero(~inside[:n]):
        profile[:, start[j]:finish[j]] -= dem[j][:, None]
    finish0 = np.zeros(n + 1, np.int64)
    finish0[:n] = np.where(inside[:n], 0, finish)
    # due times: the earliest start of a successor outside the window, and the makespan
    succ = a.succ_pad[window]
    succ_start = np.where(inside[succ], makespan, np.append(start, makespan)[succ])
    due = np.minimum(succ_start.min(axis=1, initial=makespan), makespan)
    sub = _sub_arrays(a, window)
    scale = float(w * length + 1)
    best = np.arange(w)[None, :]
    best_start = start[window]
    first_key = best_key = _score(best_start[None, :], d[window], due, scale)[0]
    if left_shift:
        decodes -= 1  # one decode is kept for the left shift
    per = max(1, decodes // rounds)
    spent = 0
    while spent < decodes:
        k = min(per, decodes - spent)
        if spent == 0 and donors is not None and donors.shape[0] > 0:
            # the first batch orders the window as other schedules of the population do
            k = min(k, donors.shape[0])
            pick_d = rng.choice(donors.shape[0], k, replace=False)
            lists = np.argsort(donors[pick_d][:, window] * n + a.rank[window][None, :], axis=1)
        else:
            lists = np.repeat(best, k, axis=0)
            for _ in range(3):
                lists = ops.shift(lists, sub, rng, rng.random(k) < 0.7)
        sub_start = np.zeros((k, w), np.int64)
        _decode_window(
            np.ascontiguousarray(window[lists]), np.ascontiguousarray(modes, np.int64), a.dur,
            a.need_r, a.need_q, a.need_k, a.pred_pad, profile, finish0, sub_start,
        )
        spent += k
        # back to window positions: sub_start[p, i] is the start of window[lists[p, i]]
        st = np.empty_like(sub_start)
        np.put_along_axis(st, lists, sub_start, axis=1)
        key = _score(st, d[window], due, scale)
        pick = int(np.argmin(key))
        if key[pick] <= best_key:
            best_key, best = key[pick], lists[pick:pick + 1]
            best_start = st[pick]
    out = start.copy()
    if best_key < first_key:
        out[window] = best_start
        if left_shift:
            # the outside after the window was held in place: one forward decode of the new schedule's
            # list lets it move into the room the window left (counted; kept only if no longer)
            shifted = serial_sgs(order_of(out[None, :], a), modes[None, :], a)[0]
            spent += 1
            if (shifted + d).max() <= (out + d).max():
                out = shifted
    return out, spent


def _valley(start: IntArray, finish: IntArray, modes: IntArray, a: Arrays, makespan: int, w: int) -> int:
    """First list position of the ``w`` activities around the schedule's least used stretch of time
    (demand over capacity summed over resources, a stretch as long as ``w`` activities' share of the
    makespan): where resources idle, a tighter order has room to gain."""
    n = a.n
    use = np.zeros(makespan + 1)
    weight = (a.dem[np.arange(n), modes] / np.maximum(a.cap, 1)).sum(axis=1) if a.cap.size else np.zeros(n)
    np.add.at(use, start, weight)
    np.add.at(use, finish, -weight)
    cum = np.concatenate([[0.0], np.cumsum(np.cumsum(use)[:makespan])])
    span = max(1, min(makespan, makespan * w // n))
    t1 = int(np.argmin(cum[span:] - cum[: makespan + 1 - span]))
    centre = int((start < t1 + span // 2).sum())
    return int(min(max(centre - w // 2, 0), n - w))


def _score(st: IntArray, d: IntArray, due: IntArray, scale: float) -> np.ndarray:
    """Last finish, then summed finish (``scale`` exceeds any sum), of window schedules; infinite past a due time."""
    fin = st + d[None, :]
    late = (fin > due[None, :]).any(axis=1)
    key = fin.max(axis=1).astype(np.float64) * scale + fin.sum(axis=1)
    return np.where(late, np.inf, key)


def _sub_arrays(a: Arrays, window: IntArray) -> Arrays:
    """The window's precedence graph on indices 0..w-1 (padding w), for the list operators."""
    w = window.size
    index = np.full(a.n + 1, w, np.int64)
    index[window] = np.arange(w)
    return replace(a, n=w, pred_pad=index[a.pred_pad[window]], succ_pad=index[a.succ_pad[window]])
