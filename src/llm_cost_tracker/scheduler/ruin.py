"""Ruin and recreate: a proposal of the elitist search that re-sequences a window of a member's schedule.

The j120 gap to the best known schedules sits mostly on the most resource-constrained instances
(docs/scheduler.md: RS 0.1 holds 1.7 of the 3.2 points). There the schedule is close to a sequence
on each resource, and a shift moves one or two activities of it, a crossover copies the partner's
order of a stretch. A large-neighbourhood move (Shaw 1998; Palpant, Artigues & Michelon 2004 on the
RCPSP) instead removes a cluster of activities that compete for the same time and puts them back
in a new order, keeping everything else: here the cluster is the activities of one time window of
the member's own schedule (its densest window, where the resources are most contended, or a
random one), which on lists taken from schedules are one stretch of the list. They are put back
into the same stretch in an order sampled by a priority rule (random, greatest resource work first,
or latest finish first for the list's direction), with a regret bias, kept precedence-feasible. The
proposal is then decoded like any other (one schedule, counted by the caller), so the budget is
untouched: this module only writes lists.

Any topological order of a stretch keeps the whole list feasible: an activity's predecessors outside
the stretch lie before it and its successors outside it after it.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.peak import peak_cuts
from llm_cost_tracker.scheduler.problem import Arrays, FloatArray, IntArray

__all__ = ["RULES", "Ruin"]

RULES = ("random", "work", "lft")


class Ruin:
    """Rewrites a share of a generation's proposals as re-sequenced windows of their parents' lists."""

    def __init__(
        self, a: Arrays, *, share: float, after: float, size: float, peak: float, rule: str, bias: float
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"ruin_rule must be one of {', '.join(RULES)}, not {rule!r}")
        self.a, self.share, self.after, self.size, self.peak, self.bias = a, share, after, size, peak, bias
        self.rule = rule
        cap = np.maximum(a.cap, 1).astype(np.float64)
        work = a.dur[:, 0] * (a.dem[:, 0, :] / cap).sum(axis=1) if a.cap.size else np.zeros(a.n)
        self._work = work.astype(np.float64)
        self._lft = (a.lft, self._reverse_lft(a))

    def apply(
        self,
        proposals: IntArray,
        lists: IntArray,
        start: IntArray,
        modes: IntArray,
        progress: float,
        rng: np.random.Generator,
        *,
        backward: bool,
    ) -> IntArray:
        """The proposals with a share of rows replaced by their parent's list (``lists``, the
        generation's direction, taken from ``start``) with one window re-sequenced."""
        if self.share <= 0 or progress < self.after:
            return proposals
        rows = np.flatnonzero(rng.random(proposals.shape[0]) < self.share)
        if rows.size == 0:
            return proposals
        cuts = self._windows(start[rows], modes[rows], rng, backward=backward)
        out = proposals.copy()
        out[rows] = self._recreate(lists[rows], cuts, rng, backward=backward)
        return out

    def _windows(self, start: IntArray, modes: IntArray, rng: np.random.Generator, *, backward: bool) -> IntArray:
        """``[P, 2]`` list positions of each schedule's densest window (share ``peak``) or of a random
        stretch, ``size / 3`` to ``size`` of the makespan (of the list for a random one) long."""
        k, n = int(start.shape[0]), int(start.shape[1])
        dense = peak_cuts(start, modes, self.a, rng, backward=backward, low=self.size / 3, high=self.size)
        length = np.maximum(2, np.floor(n * rng.uniform(self.size / 3, self.size, k))).astype(np.int64)
        first = np.floor(rng.random(k) * (n - length + 1)).astype(np.int64)
        rand = np.stack([first, first + length], axis=1)
        out: IntArray = np.where((rng.random(k) < self.peak)[:, None], dense, rand)
        return out

    def _recreate(self, lists: IntArray, cuts: IntArray, rng: np.random.Generator, *, backward: bool) -> IntArray:
        """Each list with its stretch ``cuts`` re-sequenced by a biased random race on the rule's
        priority (Efraimidis-Spirakis keys), raised along the direction's precedence graph."""
        k, n = lists.shape
        pos = np.empty_like(lists)
        np.put_along_axis(pos, lists, np.arange(n)[None, :], axis=1)
        inside = (pos >= cuts[:, :1]) & (pos < cuts[:, 1:])
        race = -np.log(rng.random((k, n)) + 1e-300) / self._weights(backward)[None, :]
        race = np.where(inside, race, np.inf)
        rank = np.argsort(np.argsort(race, axis=1, kind="stable"), axis=1, kind="stable")
        key = np.zeros((k, n + 1))
        key[:, :n] = np.where(inside, cuts[:, :1] + rank, pos)
        key[:, n] = -np.inf  # the padding predecessor
        preds = self.a.succ_pad if backward else self.a.pred_pad
        topo = np.argsort(self.a.rank)
        for j in topo[::-1] if backward else topo:  # inside a stretch: after its predecessors there
            key[:, j] = np.maximum(key[:, j], key[:, preds[j]].max(axis=1) + 1e-6)
        out: IntArray = np.argsort(key[:, :n], axis=1, kind="stable")
        return out

    def _weights(self, backward: bool) -> FloatArray:
        """Race weights per activity: the rule's priority as a regret, to the power ``bias``."""
        if self.rule == "random":
            return np.ones(self.a.n)
        if self.rule == "work":
            prio = self._work
        else:  # latest finish first in the list's direction: the smallest latest finish has the most regret
            lft = self._lft[1 if backward else 0].astype(np.float64)
            prio = lft.max(initial=0) - lft
        w: FloatArray = (prio - prio.min(initial=0) + 1.0) ** self.bias
        return w

    @staticmethod
    def _reverse_lft(a: Arrays) -> IntArray:
        """Latest finish on the reversed graph (shortest modes): the critical-path length minus each
        activity's earliest start."""
        shortest = np.where(a.valid, a.dur, np.iinfo(np.int64).max).min(axis=1)
        shortest = np.where(a.valid.any(axis=1), shortest, 0)
        es = np.zeros(a.n + 1, np.int64)
        ef = np.zeros(a.n + 1, np.int64)
        for j in np.argsort(a.rank):
            es[j] = ef[a.pred_pad[j]].max(initial=0)
            ef[j] = es[j] + shortest[j]
        out: IntArray = a.cp_lb - es[: a.n]
        return out
