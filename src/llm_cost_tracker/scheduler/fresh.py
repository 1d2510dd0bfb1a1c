"""Proposals that would repeat a decode are varied again before they are decoded (issue 20).

The serial SGS is deterministic: a list already decoded in one direction gives the same schedule
again, so decoding it spends one schedule of the budget on nothing new. With two populations late
in a j120 run about 9% of the children decode to a schedule already held (docs/scheduler.md, "Two
populations"), many of them because their list is one decoded before (an unchanged list from a
parent whose justification is already in the other population, or two children alike). This keeps
a 64-bit fingerprint of every list the serial SGS decoded, per direction, and shifts a proposal
whose list is known (or repeats an earlier proposal of its generation) once more, a few times at
most, before it is decoded. Nothing is decoded here, so the budget is untouched.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler import operators as ops
from llm_cost_tracker.scheduler.problem import Arrays, IntArray

__all__ = ["DecodedLists"]


class DecodedLists:
    """Fingerprints of the lists decoded so far in each direction."""

    def __init__(self, n: int) -> None:
        # wrapping products with fixed odd multipliers per position, as population.survivors
        mult: IntArray = np.random.default_rng(n + 1).integers(1, 2**62, (n,), dtype=np.int64)
        self.mult = mult | 1
        self.seen: dict[bool, IntArray] = {False: np.zeros(0, np.int64), True: np.zeros(0, np.int64)}

    def fingerprint(self, order: IntArray) -> IntArray:
        out: IntArray = np.asarray((order * self.mult[None, :]).sum(axis=1), np.int64)
        return out

    def add(self, order: IntArray, *, backward: bool) -> None:
        """Record lists decoded by the serial SGS in the direction ``backward``."""
        if order.shape[0]:
            self.seen[backward] = np.union1d(self.seen[backward], self.fingerprint(order))

    def repeats(self, order: IntArray, *, backward: bool) -> np.ndarray:
        """Rows whose list was decoded before in this direction or repeats an earlier row."""
        fp = self.fingerprint(order)
        _, first = np.unique(fp, return_index=True)
        out = np.isin(fp, self.seen[backward])
        later = np.ones(order.shape[0], bool)
        later[first] = False
        return out | later

    def renew(
        self, order: IntArray, a: Arrays, rng: np.random.Generator, *, backward: bool, tries: int
    ) -> tuple[IntArray, int]:
        """``order`` with every repeating row shifted again, up to ``tries`` times; also the number
        of rows still repeating (decoded anyway: the caller has counted them into the generation).

        ``a``: the arrays of the decode direction (the reversed graph for backward lists).
        """
        dup = self.repeats(order, backward=backward)
        for _ in range(tries):
            if not dup.any():
                break
            order = ops.shift(order, a, rng, dup)
            dup = self.repeats(order, backward=backward)
        return order, int(dup.sum())
