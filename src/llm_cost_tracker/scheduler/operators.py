"""Variation operators on activity lists and mode vectors, vectorized over replicas.

Every operator keeps activity lists precedence-feasible, so the decoder never needs a repair step:
the shift move stays between an activity's last predecessor and first successor, and the segment
exchange with a neighbouring slice is the two-point crossover of Hartmann (1998).
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, IntArray


def positions(order: IntArray) -> IntArray:
    """``pos[p, activity]`` = index of the activity in replica p's list."""
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(order.shape[1])[None, :], axis=1)
    return pos


def sample_lists(pop: int, a: Arrays, rng: np.random.Generator, bias: np.ndarray) -> IntArray:
    """Regret-biased random sampling on latest finish times (Kolisch 1995), one list per replica.

    ``bias[p]`` is the exponent of the regret weight: 0 samples uniformly among eligible
    activities, larger values follow the LFT rule more closely.
    """
    n = a.n
    rows = np.arange(pop)
    npred = (a.pred_pad < n).sum(axis=1)
    waiting = np.zeros((pop, n + 1), np.int64)
    waiting[:, :n] = npred
    done = np.zeros((pop, n), bool)
    order = np.empty((pop, n), np.int64)
    lft = a.lft.astype(np.float64)
    for step in range(n):
        eligible = (waiting[:, :n] == 0) & ~done
        worst = np.where(eligible, lft[None, :], -np.inf).max(axis=1, keepdims=True)
        base = np.where(eligible, worst - lft[None, :] + 1.0, 1.0)
        w = np.where(eligible, base ** bias[:, None], 0.0)
        cum = np.cumsum(w, axis=1)
        u = rng.random(pop)[:, None] * cum[:, -1:]
        pick = np.minimum((cum <= u).sum(axis=1), n - 1)
        pick = np.where(eligible[rows, pick], pick, eligible.argmax(axis=1))
        order[:, step] = pick
        done[rows, pick] = True
        succ = a.succ_pad[pick]
        np.subtract.at(waiting, (np.repeat(rows, succ.shape[1]), succ.ravel()), 1)
    return order


def shift(order: IntArray, a: Arrays, rng: np.random.Generator, active: np.ndarray) -> IntArray:
    """Move one random activity to a random position between its predecessors and successors."""
    pop, n = order.shape
    rows = np.arange(pop)
    pos = positions(order)
    pos_pad = np.concatenate([pos, np.full((pop, 1), -1)], axis=1)
    i = rng.integers(0, n, pop)
    act = order[rows, i]
    lo = pos_pad[rows[:, None], a.pred_pad[act]].max(axis=1) + 1
    pos_pad[:, n] = n
    hi = pos_pad[rows[:, None], a.succ_pad[act]].min(axis=1) - 1
    k = lo + np.floor(rng.random(pop) * (hi - lo + 1)).astype(np.int64)
    keys = 2 * np.tile(np.arange(n), (pop, 1))
    keys[rows, i] = np.where(k < i, 2 * k - 1, np.where(k > i, 2 * k + 1, 2 * i))
    new = np.take_along_axis(order, np.argsort(keys, axis=1, kind="stable"), axis=1)
    return np.where(active[:, None], new, order)


def exchange(
    order: IntArray,
    modes: IntArray,
    partner: IntArray,
    rng: np.random.Generator,
    active: np.ndarray,
    cuts: IntArray | None = None,
) -> tuple[IntArray, IntArray]:
    """Two-point crossover with a partner replica: own head, partner's middle, own tail.

    Activities taken from the partner also take the partner's modes. ``cuts`` (``[P, 2]``, sorted)
    are the list positions of the middle; random when not given.
    """
    pop, n = order.shape
    rows = np.arange(pop)
    c = np.sort(rng.integers(0, n + 1, (pop, 2)), axis=1) if cuts is None else cuts
    pos = positions(order)
    ppos = positions(order[partner])
    head = pos < c[:, :1]
    rest_rank = np.where(head, n, ppos)  # partner order among the non-head activities
    rank_in_rest = np.argsort(np.argsort(rest_rank, axis=1, kind="stable"), axis=1, kind="stable")
    middle = ~head & (rank_in_rest < (c[:, 1:] - c[:, :1]))
    keys = np.where(head, pos, np.where(middle, n + ppos, 2 * n + pos))
    child = np.argsort(keys, axis=1, kind="stable")
    child_modes = np.where(middle, modes[partner], modes)
    keep = ~active
    child[keep] = order[keep]
    child_modes[keep] = modes[keep]
    del rows
    return child, child_modes


def mutate_modes(
    modes: IntArray, a: Arrays, rng: np.random.Generator, active: np.ndarray
) -> IntArray:
    """Give one random multi-mode activity a random other valid mode, in every active replica."""
    multi = np.flatnonzero(a.valid.sum(axis=1) > 1)
    if multi.size == 0:
        return modes
    pop = modes.shape[0]
    rows = np.arange(pop)
    act = multi[rng.integers(0, multi.size, pop)]
    choices = a.valid[act]  # [P, M]
    w = choices & (np.arange(a.dur.shape[1])[None, :] != modes[rows, act][:, None])
    cum = np.cumsum(w, axis=1)
    u = np.floor(rng.random(pop) * cum[:, -1]).astype(np.int64)
    new_mode = (cum <= u[:, None]).sum(axis=1)
    out = modes.copy()
    sel = active & (cum[:, -1] > 0)
    out[rows[sel], act[sel]] = new_mode[sel]
    return out


def ring_distance(order: IntArray, modes: IntArray, cur_order: IntArray, cur_modes: IntArray) -> np.ndarray:
    """Each slice's disagreement (mean position distance plus mode-disagreement rate) with the current
    state (``cur_order``, ``cur_modes``) of its two ring neighbours: the annealing slices' coupling term."""
    n = order.shape[1]
    pos = positions(order).astype(np.float64) / n
    cur_pos = positions(cur_order).astype(np.float64) / n
    d = np.zeros(order.shape[0])
    for step in (1, -1):
        nb_pos = np.roll(cur_pos, step, axis=0)
        nb_modes = np.roll(cur_modes, step, axis=0)
        d += np.abs(pos - nb_pos).mean(axis=1) + (modes != nb_modes).mean(axis=1)
    return d
