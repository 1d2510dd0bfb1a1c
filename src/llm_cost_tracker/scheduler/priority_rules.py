"""Priority rules for the start population's regret-biased sampling (Kolisch 1995; Kolisch & Hartmann 1999).

The sampling in ``operators.sample_lists`` draws the next activity among the eligible ones with a
weight that grows with its regret under a priority rule (lower value first). Latest finish time
(LFT) alone is the default; ``AnnealingSettings.init_rules`` spreads the start population over
several classic rules instead, so it starts both good and varied: LFT, latest start time (LST),
most total successors (MTS) and greatest rank positional weight (GRPW, the activity's duration plus
its immediate successors').
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import Arrays, FloatArray, IntArray

__all__ = ["RULES", "rule_priorities", "start_lists"]

RULES = ("lft", "lst", "mts", "grpw")


def rule_priorities(a: Arrays) -> FloatArray:
    """``[len(RULES), n]`` priority values, lower first, on the activities' shortest valid modes."""
    n = a.n
    shortest = np.where(a.valid, a.dur, np.iinfo(np.int64).max).min(axis=1)
    shortest = np.where(a.valid.any(axis=1), shortest, 0).astype(np.float64)
    lft = a.lft.astype(np.float64)
    succ = [[int(s) for s in a.succ_pad[j] if s < n] for j in range(n)]
    below: list[set[int]] = [set() for _ in range(n)]
    for j in np.argsort(a.rank)[::-1]:
        for s in succ[j]:
            below[j].add(s)
            below[j] |= below[s]
    mts = np.array([len(b) for b in below], np.float64)
    grpw = shortest + np.array([shortest[s].sum() for s in succ], np.float64)
    return np.stack([lft, lft - shortest, -mts, -grpw])


def start_lists(count: int, a: Arrays, rng: np.random.Generator, *, rules: bool) -> IntArray:
    """``count`` sampled lists: a quarter uniform among the eligible activities, the others biased
    with a regret exponent drawn from [0.5, 3], on LFT or (``rules``) on the rules in turn."""
    bias = np.where(np.arange(count) % 4 == 0, 0.0, rng.uniform(0.5, 3.0, count))
    if not rules:
        return sample_lists(count, a, rng, bias)
    table = rule_priorities(a)
    return sample_lists(count, a, rng, bias, table[np.arange(count) % len(RULES)])
