"""The vectorized serial SGS as it was before the event-bounded rewrite (issue 20), kept as a reference.

The decoder in ``scheduler/sgs.py`` must produce exactly these start times for the same lists and
modes: the search's results depend on it, so a faster decoder may not change a single schedule.
This copy scans each resource's profile over the whole window of every list position and subtracts
placed activities through a busy mask; it is slow but was checked against the loop-based
``reference_sgs`` in ``conftest.py`` on PSPLIB, multi-mode, job-shop and task-batch instances.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["previous_justify", "previous_serial_sgs"]


def previous_serial_sgs(
    order: IntArray, modes: IntArray, a: Arrays, *, reverse: bool = False
) -> IntArray:
    """Start times ``[P, n]`` of the earliest-start serial SGS for every replica.

    Args:
        order: ``[P, n]`` activity lists, feasible for the (possibly reversed) precedence graph.
        modes: ``[P, n]`` mode index of each activity (by activity, not by position).
        a: compiled problem arrays.
        reverse: schedule on the reversed graph (successors act as predecessors); start times are
            then in reversed time, see :func:`justify`.
    """
    pop, n = order.shape
    rows = np.arange(pop)
    cols = np.arange(n)[None, :]
    d_all = a.dur[cols, modes]  # [P, n]
    q_all = a.dem[cols, modes].astype(np.int32)  # [P, n, R]
    pred = a.succ_pad if reverse else a.pred_pad
    horizon = a.horizon
    # one contiguous [P, time] profile per resource: the scans below read it along time
    rem = [np.full((pop, horizon), int(c), np.int32) for c in a.cap]
    finish = np.zeros((pop, n + 1), np.int64)  # column n is the padding "predecessor"
    start = np.zeros((pop, n), np.int64)
    grid = np.arange(horizon)
    # per list position: which resources any replica's activity there demands (skips the rest)
    demanded = (a.dem.max(axis=1) > 0)[order].any(axis=0)  # [n, R]
    used_at = [np.flatnonzero(row).tolist() for row in demanded]
    bound = 0
    for i in range(n):
        j = order[:, i]
        d = d_all[rows, j]
        q = q_all[rows, j]
        es = finish[rows[:, None], pred[j]].max(axis=1)
        # Every start lies in [min es, max(es, busy end)]; past the busy end the profile is free.
        lo = int(es.min())
        hi = int(min(horizon, max(int(es.max()), bound) + int(d.max()) + 1))
        used = used_at[i]
        if used:
            width = hi - lo
            ok = rem[used[0]][:, lo:hi] >= q[:, used[0], None]
            for r in used[1:]:
                ok &= rem[r][:, lo:hi] >= q[:, r, None]
            # bad[p, t] = clashing slots before t; a window [t, t + d) is free when bad agrees at both ends
            bad = np.empty((pop, width + 1), np.int32)
            bad[:, 0] = 0
            np.cumsum(~ok, axis=1, out=bad[:, 1:])
            g = grid[:width]
            ends = np.minimum(g[None, :] + d[:, None], width) + (rows * (width + 1))[:, None]
            clash = bad.reshape(-1)[ends] - bad[:, :width]
            cand = (clash == 0) & (g[None, :] >= (es - lo)[:, None])
            s = cand.argmax(axis=1) + lo
            b_lo, b_hi = int(s.min()), int((s + d).max())
            span = grid[b_lo:b_hi]
            busy = (span[None, :] >= s[:, None]) & (span[None, :] < (s + d)[:, None])
            for r in used:
                prof = rem[r][:, b_lo:b_hi]
                np.subtract(prof, q[:, r, None], out=prof, where=busy)
        else:
            s = es
        start[rows, j] = s
        finish[rows, j] = s + d
        bound = max(bound, int((s + d).max()))
    return start


def previous_justify(start: IntArray, modes: IntArray, a: Arrays) -> tuple[IntArray, IntArray]:
    """Forward-backward improvement as it was: lists ordered by ``np.lexsort``, decoded above."""
    cols = np.arange(start.shape[1])[None, :]
    d = a.dur[cols, modes]
    finish = start + d
    rank = np.broadcast_to(a.rank, start.shape)
    back_order = np.lexsort((-rank, -finish), axis=1)
    rstart = previous_serial_sgs(back_order, modes, a, reverse=True)
    rfinish = rstart + d
    right_start = rfinish.max(axis=1, keepdims=True) - rfinish
    fwd_order = np.lexsort((rank, right_start), axis=1)
    return previous_serial_sgs(fwd_order, modes, a), fwd_order
