"""Pareto scoring: vectorized non-dominated sorting and hypervolume against naive references."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.scheduler.pareto import (
    find_non_dominated,
    hypervolume,
    non_dominated_rank,
    pick_default,
)

points = st.lists(st.tuples(*[st.integers(0, 6)] * 3), min_size=0, max_size=25)


def _naive_front(f: list[tuple[int, ...]]) -> list[int]:
    def dom(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return [i for i, p in enumerate(f) if not any(dom(q, p) for q in f)]


@given(points)
@settings(max_examples=150, deadline=None)
def test_non_dominated_matches_naive_reference(f: list[tuple[int, ...]]) -> None:
    """The vectorized front equals the pairwise-loop front on random integer points."""
    got = find_non_dominated(np.array(f, dtype=float).reshape(-1, 3)).tolist()
    assert got == _naive_front(f)


@given(points)
@settings(max_examples=100, deadline=None)
def test_ranks_peel_fronts_in_order(f: list[tuple[int, ...]]) -> None:
    """Rank k rows are exactly the naive front of what remains after removing ranks below k."""
    arr = np.array(f, dtype=float).reshape(-1, 3)
    rank = non_dominated_rank(arr)
    remaining = list(range(len(f)))
    level = 0
    while remaining:
        front = [remaining[i] for i in _naive_front([f[i] for i in remaining])]
        assert sorted(np.flatnonzero(rank == level).tolist()) == sorted(front)
        remaining = [i for i in remaining if i not in front]
        level += 1


@given(st.lists(st.tuples(*[st.integers(0, 4)] * 3), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_hypervolume_equals_unit_cell_count(f: list[tuple[int, ...]]) -> None:
    """On integer points with reference (5,5,5) the volume equals the number of dominated unit cells."""
    cells = sum(
        1
        for c in itertools.product(range(5), repeat=3)
        if any(all(p[d] <= c[d] for d in range(3)) for p in f)
    )
    assert hypervolume(np.array(f, dtype=float), np.full(3, 5.0)) == cells


def test_hypervolume_two_d_known_value() -> None:
    """Two 2-D points with reference (4,4) cover the union of their rectangles (8 + 6 - 4 = 10)."""
    assert hypervolume(np.array([[0.0, 2.0], [2.0, 1.0]]), np.array([4.0, 4.0])) == 10.0


def test_pick_prefers_deadlines_then_cheapest_within_makespan_slack() -> None:
    """The pick meets deadlines first, then takes the cheapest within 20% of the shortest makespan."""
    f = np.array([[10, 9, 0], [11, 5, 0], [13, 1, 0], [8, 20, 3]], dtype=float)
    assert pick_default(f) == 1
    assert pick_default(f[[3]]) == 0
