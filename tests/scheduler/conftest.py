"""Shared fixtures: shipped tiny and public instances, a reference SGS."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from llm_cost_tracker.scheduler.problem import Problem

TESTDATA = Path(__file__).with_name("testdata")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_data() -> Path:
    """Three public PSPLIB j30 instances and their optima, shipped in testdata/psplib (source in its README)."""
    return TESTDATA


def reference_sgs(problem: Problem, order: list[int], modes: list[int]) -> list[int]:
    """Textbook serial SGS with a per-period loop, written independently of the vectorized one."""
    acts = problem.activities
    preds: list[list[int]] = [[] for _ in acts]
    for i, a in enumerate(acts):
        for s in a.successors:
            preds[s].append(i)
    caps = [r.capacity for r in problem.renewable]
    used: dict[int, list[int]] = {}
    starts = [0] * len(acts)
    finish = [0] * len(acts)
    for j in order:
        m = acts[j].modes[modes[j]]
        t = max((finish[p] for p in preds[j]), default=0)
        while any(
            used.get(u, [0] * len(caps))[r] + m.renewable[r] > caps[r]
            for u in range(t, t + m.duration)
            for r in range(len(caps))
        ):
            t += 1
        for u in range(t, t + m.duration):
            row = used.setdefault(u, [0] * len(caps))
            for r in range(len(caps)):
                row[r] += m.renewable[r]
        starts[j], finish[j] = t, t + m.duration
    return starts


def brute_force_makespan(problem: Problem) -> int:
    """Optimal makespan by decoding every precedence-feasible list with every mode vector.

    Serial SGS over all lists reaches every active schedule, and some active schedule is optimal.
    """
    acts = problem.activities
    n = len(acts)
    preds: list[set[int]] = [set() for _ in acts]
    for i, a in enumerate(acts):
        for s in a.successors:
            preds[s].add(i)
    best = None
    for modes in itertools.product(*[range(len(a.modes)) for a in acts]):
        if any(
            sum(acts[i].modes[modes[i]].nonrenewable[k] for i in range(n)) > res.capacity
            for k, res in enumerate(problem.nonrenewable)
        ):
            continue
        for perm in itertools.permutations(range(n)):
            pos = {a: i for i, a in enumerate(perm)}
            if any(pos[p] > pos[j] for j in range(n) for p in preds[j]):
                continue
            st = reference_sgs(problem, list(perm), list(modes))
            ms = max(st[i] + acts[i].modes[modes[i]].duration for i in range(n))
            best = ms if best is None else min(best, ms)
    assert best is not None
    return best
