"""Resource-order crossover: the child takes the partner's sequence on one contended resource.

On the most resource-constrained j120 instances (RS 0.1, where the default is furthest from the best
known; docs/scheduler.md) two activities that each demand more than half of a resource can never
run at the same time, so a schedule is, per resource, a sequence of such activities, and much of
its quality is in those sequences. The two-point and peak crossovers copy a stretch of time of the
partner (every resource's order in it); this one copies the partner's whole order of the activities
that contend for one resource and keeps the receiver's order for all others, as the machine-order
crossovers of job-shop genetic algorithms do. The resource is drawn per child in proportion to its
work (duration times demand over capacity, summed over its contended activities), read from the
instance. Where no activity demands more than half of any resource (loose instances) the set is
empty and the child is the two-point one, so the operator only acts where resources are tight.

The contended activities take the receiver's list positions of that set, in the partner's order; a
key raised along the direction's precedence graph keeps the list feasible (an activity moved before
a predecessor goes right after it). The child is decoded like any other proposal (one schedule,
counted by the caller); this module only writes lists.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays, BoolArray, IntArray

__all__ = ["ResourceCross"]


class ResourceCross:
    """Rewrites a share of a generation's crossover children as resource-order children."""

    def __init__(self, a: Arrays, *, share: float) -> None:
        self.a, self.share = a, share
        cap = np.maximum(a.cap, 1)
        dem = a.dem[:, 0, :]  # single-mode problems only
        self.contended: BoolArray = (2 * dem > cap[None, :]) & (a.dur[:, :1] > 0)  # [n, R]
        work = (a.dur[:, :1] * dem / cap[None, :] * self.contended).sum(axis=0)
        usable = self.contended.sum(axis=0) >= 2
        total = float(work[usable].sum())
        self.weights = np.where(usable, work, 0.0) / total if total > 0 else None

    def apply(
        self,
        children: IntArray,
        lists: IntArray,
        partner: IntArray,
        crossed: np.ndarray,
        rng: np.random.Generator,
        *,
        backward: bool,
    ) -> IntArray:
        """``children`` with a share of the ``crossed`` rows replaced by their receiver's list (``lists``,
        the generation's direction) ordered on one resource as their partner's list orders it."""
        if self.weights is None or self.share <= 0:
            return children
        rows = np.flatnonzero(crossed & (rng.random(children.shape[0]) < self.share))
        if rows.size == 0:
            return children
        res = rng.choice(self.weights.size, rows.size, p=self.weights)
        out = children.copy()
        out[rows] = self._cross(lists[rows], lists[partner[rows]], self.contended[:, res].T, backward=backward)
        return out

    def _cross(self, own: IntArray, other: IntArray, member: BoolArray, *, backward: bool) -> IntArray:
        """``own`` lists whose ``member`` activities (``[P, n]``) follow ``other``'s order in their slots."""
        k, n = int(own.shape[0]), int(own.shape[1])
        pos = np.empty_like(own)
        np.put_along_axis(pos, own, np.arange(n)[None, :], axis=1)
        ppos = np.empty_like(other)
        np.put_along_axis(ppos, other, np.arange(n)[None, :], axis=1)
        slots = np.sort(np.where(member, pos, n), axis=1)  # the receiver's positions of the set
        by_partner = np.argsort(np.where(member, ppos, n), axis=1, kind="stable")  # the set in the partner's order
        key = np.zeros((k, n + 1))
        key[:, :n] = pos
        count = member.sum(axis=1)
        rows, idx = np.nonzero(np.arange(n)[None, :] < count[:, None])
        key[rows, by_partner[rows, idx]] = slots[rows, idx]
        key[:, n] = -np.inf  # the padding predecessor
        preds = self.a.succ_pad if backward else self.a.pred_pad
        topo = np.argsort(self.a.rank)
        for j in topo[::-1] if backward else topo:
            key[:, j] = np.maximum(key[:, j], key[:, preds[j]].max(axis=1) + 1e-3)
        out: IntArray = np.argsort(key[:, :n], axis=1, kind="stable")
        return out
