"""Serial schedule generation scheme: a compiled loop over list positions and a time-indexed profile.

Each replica is an activity list (a precedence-feasible permutation) plus a mode vector. The serial
SGS places the activities in list order, each at its earliest precedence- and resource-feasible
start. Position i depends on every placement before it, so the loop over positions is inherent; the
previous decoder ran it in Python, vectorized across replicas (about 40 numpy calls per position:
~40 us of interpreter overhead before a cell is read, 0.14 s per decode of 32 replicas of a
1,000-job batch). Here the loop is compiled by numba (on the first decode of a process, then loaded
from numba's on-disk cache) and runs replica by replica over one ``[time, resources]`` profile:
~7 ms for the same decode. The backward and forward passes of justification reuse it on the
reversed precedence graph. Every change to this module must keep the start times of
``tests/scheduler/sgs_reference.py`` (tested): the search's results depend on each one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["justify", "order_of", "serial_sgs"]

Kernel = Callable[
    [IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray], None
]


def _decode_py(
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

    Written for numba (plain loops over int64 arrays). ``need_r[j, m, :need_k[j, m]]`` are the
    resources mode ``m`` of ``j`` demands and ``need_q`` the demands, so a slot check reads only
    those (a task-batch job uses 2 of 5). The earliest start is the textbook scan: from the earliest
    precedence-feasible start walk the window's slots; a slot short of capacity moves the window
    past it. From the replica's busy end on every slot is free, so a valid mode is placed by then
    without a scan; a mode over a capacity fits nowhere and is put there (what is returned for it
    is not a schedule, and no operator draws one).
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
    rem = np.empty((length, n_res), np.int64)  # remaining capacity; only [0, busy end) gets dirty
    for u in range(length):
        for r in range(n_res):
            rem[u, r] = cap[r]
    finish = np.zeros(n + 1, np.int64)  # entry n is the padding "predecessor"
    for p in range(pop):
        finish[:] = 0
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
                u = t
                while u < min(t + d, busy_end):  # from the busy end on every slot is free
                    fits = True
                    for c in range(k):
                        if rem[u, need_r[j, m, c]] < need_q[j, m, c]:
                            fits = False
                            break
                    if fits:
                        u += 1
                    else:
                        t = u + 1
                        u = t
                for u in range(t, t + d):
                    for c in range(k):
                        rem[u, need_r[j, m, c]] -= need_q[j, m, c]
            start[p, j] = t
            finish[j] = t + d
            busy_end = max(busy_end, t + d)
        for u in range(busy_end):
            for r in range(n_res):
                rem[u, r] = cap[r]


@functools.cache
def _kernel() -> Kernel:
    """The compiled decoder. numba is imported on the first decode only, so a process that never
    plans does not pay its import (~0.2 s). The machine code is cached on disk (``__pycache__``
    beside this file, else numba's per-user cache dir): ~1 s to compile once, ~0.1 s to load
    after. Where no directory is writable it is compiled in memory, once per process."""
    import numba

    try:
        compiled: Kernel = numba.njit(cache=True, nogil=True)(_decode_py)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        compiled = numba.njit(cache=False, nogil=True)(_decode_py)
    return compiled


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
    _kernel()(
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
    rank = np.broadcast_to(a.rank, start.shape)
    back_order = np.lexsort((-rank, -finish), axis=1)
    rstart = serial_sgs(back_order, modes, a, reverse=True)
    rfinish = rstart + d
    horizon = rfinish.max(axis=1, keepdims=True)
    right_start = horizon - rfinish
    fwd_order = np.lexsort((rank, right_start), axis=1)
    return serial_sgs(fwd_order, modes, a), fwd_order


def order_of(start: IntArray, a: Arrays) -> IntArray:
    """Activity lists sorted by start time (ties by topological rank), as decoded lists."""
    rank = np.broadcast_to(a.rank, start.shape)
    return np.lexsort((rank, start), axis=1)
