"""Serial schedule generation scheme, vectorized across a population of replicas.

Each replica is an activity list (a precedence-feasible permutation) plus a mode vector. The decoder
walks the lists position by position for all replicas at once: resource profiles are one
``[resources, replicas, time]`` array, and the earliest feasible start of every replica's next
activity is found with one cumulative count of clashes, so there is no Python loop over replicas.
The backward and forward passes of justification reuse the same routine on the reversed precedence
graph. Every change to this module must keep the start times of ``tests/scheduler/sgs_reference.py``
(tested): the search's results depend on each one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from llm_cost_tracker.scheduler.problem import Arrays, BoolArray, IntArray

__all__ = ["justify", "order_of", "serial_sgs"]

Int32Array = npt.NDArray[np.int32]


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
    pop, n = order.shape
    rows = np.arange(pop)
    m_pos = np.take_along_axis(modes, order, axis=1)
    d_pos = a.dur[order, m_pos]  # [P, n]: durations by list position, gathered once
    q_pos = a.dem[order, m_pos].astype(np.int32)  # [P, n, R]
    pred_pos = (a.succ_pad if reverse else a.pred_pad)[order]  # [P, n, K]
    horizon = a.horizon
    # one contiguous [P, time] profile per resource: the scans below read it along time
    # (stacked, so one fancy-indexed subtraction updates every resource an activity uses)
    stack = np.empty((len(a.cap), pop, horizon), np.int32)
    stack[...] = a.cap.astype(np.int32)[:, None, None]
    rem = list(stack)
    flat = stack.reshape(-1)
    finish = np.zeros((pop, n + 1), np.int64)  # column n is the padding "predecessor"
    start = np.zeros((pop, n), np.int64)
    busy_end = np.zeros(pop, np.int64)  # per replica: every resource is free from here on
    grid = np.arange(horizon + int(a.dur.max(initial=0)) + 1)
    row_off = rows * horizon
    need = q_pos > 0
    # per list position: which resources any replica's activity there demands (skips the rest) ...
    used_at = [np.flatnonzero(row) for row in np.asarray(need.any(axis=0))]
    # ... and per replica its own demanded resources first (rows of the stack seen as [R * P, time])
    k_at = need.sum(axis=2).max(axis=0).tolist()
    by_need = np.argsort(~need, axis=2, kind="stable")  # [P, n, R]
    own_row = by_need * pop + rows[:, None, None]
    own_q = np.take_along_axis(q_pos, by_need, axis=2)  # 0 past a replica's demanded resources
    by_row = stack.reshape(-1, horizon)
    for i in range(n):
        d = d_pos[:, i]
        es = finish[rows[:, None], pred_pos[:, i]].max(axis=1)
        used = used_at[i]
        if used.size:
            q = q_pos[:, i]
            lo = int(es.min())
            hi = int((np.maximum(es, busy_end) + d).max()) + 1
            if k_at[i] < used.size:  # each replica reads only its own resources' profiles
                rk, qk = own_row[:, i], own_q[:, i]
                clash = by_row[rk[:, 0], lo:hi] < qk[:, 0, None]
                for c in range(1, k_at[i]):
                    clash |= by_row[rk[:, c], lo:hi] < qk[:, c, None]
            else:
                clash = rem[used[0]][:, lo:hi] < q[:, used[0], None]
                for r in used[1:]:
                    clash |= rem[r][:, lo:hi] < q[:, r, None]
            s = lo + _first_window(clash, d, es - lo, grid)
            _occupy(flat, used * (pop * horizon), q[:, used], d, s, row_off)
        else:
            s = es
        j = order[:, i]
        f = s + d
        start[rows, j] = s
        finish[rows, j] = f
        np.maximum(busy_end, f, out=busy_end)
    return start


def _first_window(clash: BoolArray, d: IntArray, after: IntArray, grid: IntArray) -> IntArray:
    """Per replica the first ``t >= after`` with no clash in ``[t, t + d)``.

    ``clash`` covers ``[min es, max(max(es, busy_end) + d)]``: nothing starts before its earliest
    start, and from ``max(es, busy_end)`` on a replica's profile is free, so its start is at most that.
    A cumulative count of clashes that agrees at both ends of a window marks it free; the count is
    padded past the end with its last value (free there), so no window end needs clipping.
    """
    rows, width = clash.shape
    stride = width + int(d.max()) + 1
    count = np.empty((rows, stride), np.int32)
    count[:, 0] = 0
    np.cumsum(clash, axis=1, out=count[:, 1 : width + 1])
    count[:, width + 1 :] = count[:, width, None]
    g = grid[:width]
    fits = count.reshape(-1)[g + (d + np.arange(rows) * stride)[:, None]] == count[:, :width]
    fits &= g >= after[:, None]
    first: IntArray = fits.argmax(axis=1)
    return first


def _occupy(
    flat: Int32Array,
    planes: IntArray,
    q: Int32Array,
    d: IntArray,
    s: IntArray,
    row_off: IntArray,
) -> None:
    """Subtract each replica's demand over its placed slots ``[s, s + d)`` from the profiles.

    ``planes`` are the offsets of the used resources' profiles in the flat stack and ``q`` their
    demands ``[P, used]``. The (resource, replica, slot) cells are distinct, so one fancy-indexed
    subtraction is exact and touches only ``used * sum(d)`` cells instead of a ``[P, span]`` mask.
    """
    total = int(d.sum())
    if total == 0:
        return
    first = np.cumsum(d) - d  # offset of each replica's run in the list of its slots
    at = np.repeat(row_off + s - first, d) + np.arange(total)
    flat[planes[:, None] + at] -= np.repeat(q, d, axis=0).T


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
