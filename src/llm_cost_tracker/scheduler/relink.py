"""Path relinking between the elites of the two populations (Kochetov & Stolyar 2003; issue 20).

The path from list A to list B moves, one position at a time, B's next activity to the same
position in A: after k steps the list is B's first k activities followed by A's others in A's order.
Every intermediate list is precedence-feasible (B's head holds the predecessors of each activity
it moves). A few lists spread evenly over the stretch where A and B differ are decoded as children
(each one schedule, counted by the caller).
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.operators import positions
from llm_cost_tracker.scheduler.problem import IntArray

__all__ = ["path_lists"]


def path_lists(a_list: IntArray, b_list: IntArray, count: int) -> IntArray:
    """Up to ``count`` distinct intermediate lists on the path from ``a_list`` to ``b_list``
    (``[k, n]``, possibly fewer, none equal to either end)."""
    n = a_list.shape[0]
    differ = np.flatnonzero(a_list != b_list)
    if differ.size < 2 or count <= 0:
        return np.zeros((0, n), np.int64)
    lo, hi = int(differ[0]), int(differ[-1])
    ks = np.unique(np.linspace(lo + 1, hi, count + 2).round().astype(np.int64)[1:-1])
    pos_a = positions(a_list[None, :])[0]
    out = []
    for k in ks:
        head = np.zeros(n, bool)
        head[b_list[:k]] = True
        key = np.where(head, positions(b_list[None, :])[0], n + pos_a)
        lst = np.argsort(key, kind="stable")
        if not (np.array_equal(lst, a_list) or np.array_equal(lst, b_list)):
            out.append(lst)
    if not out:
        return np.zeros((0, n), np.int64)
    uniq = np.unique(np.stack(out), axis=0)
    return np.asarray(uniq, np.int64)
