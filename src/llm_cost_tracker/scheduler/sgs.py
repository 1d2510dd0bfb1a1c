"""Serial schedule generation scheme: a compiled loop over list positions and a time-indexed profile.

Each replica is an activity list (a precedence-feasible permutation) plus a mode vector. The serial
SGS places the activities in list order, each at its earliest precedence- and resource-feasible
start. Position i depends on every placement before it, so the loop over positions is inherent; the
previous decoder ran it in Python, vectorized across replicas (~40 numpy calls per position, so
~40 us of interpreter overhead before a cell is read: 0.14 s per decode of 32 replicas of a
1,000-job batch). Here the loop is compiled (``compiled.py``) and runs replica by replica over one
``[resources, time]`` profile: ~6 ms for the same decode. The backward and forward passes of
justification reuse it on the reversed precedence graph. Every change to this module must keep the
start times of ``tests/scheduler/sgs_reference.py`` (tested): the search's results depend on each one.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["justify", "order_of", "serial_sgs"]


@compiled
def _decode(
    order: IntArray,
    modes: IntArray,
    dur: IntArray,
    need_r: IntArray,
    need_q: IntArray,
    need_k: IntArray,
    preds: IntArray,
    cap: IntArray,
    start: IntArray,
) -> None:
    """Fill ``start[p, j]`` for every replica ``p`` and activity ``j`` (see :func:`serial_sgs`).

    ``need_r[j, m, :need_k[j, m]]`` are the resources mode ``m`` of ``j`` demands and ``need_q`` the
    demands, so a slot check reads only those (a task-batch job uses 2 of 5; the first two are held
    in locals). The earliest start is found in one pass from the earliest precedence-feasible start:
    count the run of consecutive slots with enough of every demanded resource, a short slot resets
    it, and the window starts where the run reaches the duration. From the replica's busy end on
    every slot is free, so the run is complete there (a valid mode is placed by then; a mode over a
    capacity fits nowhere and is put there too: what is returned for it is not a schedule, and no
    operator draws one).
    """
    pop, n = order.shape
    n_res = cap.shape[0]
    width = preds.shape[1]
    length = 1  # a replica's busy end is at most the sum of its durations
    for p in range(pop):
        total = 0
        for j in range(n):
            total += dur[j, modes[p, j]]
        length = max(length, total + 1)
    rem = np.empty((max(n_res, 1), length), np.int64)  # remaining capacity; only [0, busy end) gets dirty
    for r in range(n_res):
        for u in range(length):
            rem[r, u] = cap[r]
    finish = np.zeros(n + 1, np.int64)  # entry n is the padding "predecessor"
    for p in range(pop):
        for j in range(n + 1):
            finish[j] = 0
        busy_end = 0
        for i in range(n):
            j = order[p, i]
            m = modes[p, j]
            d = dur[j, m]
            t = 0
            for c in range(width):
                t = max(t, finish[preds[j, c]])
            k = need_k[j, m]
            if d > 0 and k > 0:
                first, q0 = rem[need_r[j, m, 0]], need_q[j, m, 0]
                second, q1 = (rem[need_r[j, m, 1]], need_q[j, m, 1]) if k > 1 else (first, q0)
                run = 0
                u = t
                if k <= 2:  # the common case gets a loop without the inner one (~1.4x faster)
                    while run < d and u < busy_end:
                        run = (run + 1) * ((first[u] >= q0) & (second[u] >= q1))
                        u += 1
                else:
                    while run < d and u < busy_end:
                        fits = (first[u] >= q0) & (second[u] >= q1)
                        for c in range(2, k):
                            fits &= rem[need_r[j, m, c], u] >= need_q[j, m, c]
                        run = (run + 1) * fits
                        u += 1
                t = u - run
                for c in range(k):
                    row, q = rem[need_r[j, m, c]], need_q[j, m, c]
                    for u in range(t, t + d):
                        row[u] -= q
            start[p, j] = t
            finish[j] = t + d
            busy_end = max(busy_end, t + d)
        for r in range(n_res):
            for u in range(busy_end):
                rem[r, u] = cap[r]


def serial_sgs(
    order: IntArray, modes: IntArray, a: Arrays, *, reverse: bool = False
) -> IntArray:
    """Start times ``[P, n]`` of the earliest-start serial SGS for every replica.

    Args:
        order: ``[P, n]`` activity lists, feasible for the (possibly reversed) precedence graph.
        modes: ``[P, n]`` mode index of each activity (by activity, not by position); valid modes
            only (``a.valid``): a mode that exceeds a capacity fits nowhere, and its "start" is
            meaningless. Every operator and the repair draw valid modes only.
        a: compiled problem arrays.
        reverse: schedule on the reversed graph (successors act as predecessors); start times are
            then in reversed time, see :func:`justify`.
    """
    start = np.zeros(order.shape, np.int64)
    _decode(
        np.ascontiguousarray(order, np.int64),
        np.ascontiguousarray(modes, np.int64),
        a.dur,
        a.need_r,
        a.need_q,
        a.need_k,
        a.succ_pad if reverse else a.pred_pad,
        a.cap,
        start,
    )
    return start


def justify(
    start: IntArray, modes: IntArray, a: Arrays
) -> tuple[IntArray, IntArray]:
    """Forward-backward improvement: right-justify, then left-justify (two decoded schedules).

    Returns the new start times and the activity lists they induce (ordered by start), so the
    improvement is written back into the replicas. The makespan never gets worse.
    """
    cols = np.arange(start.shape[1])[None, :]
    d = a.dur[cols, modes]
    finish = start + d
    back_order = _by_time(-finish, -a.rank, a.n)  # decreasing finish, then decreasing rank
    rstart = serial_sgs(back_order, modes, a, reverse=True)
    rfinish = rstart + d
    horizon = rfinish.max(axis=1, keepdims=True)
    right_start = horizon - rfinish
    fwd_order = _by_time(right_start, a.rank, a.n)
    return serial_sgs(fwd_order, modes, a), fwd_order


def order_of(start: IntArray, a: Arrays) -> IntArray:
    """Activity lists sorted by start time (ties by topological rank), as decoded lists."""
    return _by_time(start, a.rank, a.n)


def _by_time(time: IntArray, rank: IntArray, n: int) -> IntArray:
    """Per row, the activities sorted by ``time`` and then ``rank`` (what ``np.lexsort((rank, time))``
    returns). ``rank`` is a permutation of ``range(n)`` up to sign, so ``time * n + rank`` has no ties
    and one unstable sort of it gives the same order (~2x faster than the two stable passes)."""
    order: IntArray = np.argsort(time * n + rank[None, :], axis=1)
    return order
