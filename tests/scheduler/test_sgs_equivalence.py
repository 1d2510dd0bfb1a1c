"""The serial SGS gives exactly the start times of the previous decoder (issue 20).

The search's results depend on every decoded start time, so a faster decoder must not move one.
The previous vectorized decoder is kept in ``sgs_reference.py``; these tests decode the same random
activity lists and modes with both, forward and on the reversed graph, on the shipped instances, a
generated task-batch-like problem with zero durations and jobs that demand only some resources,
and seven public benchmark instances shipped in testdata/public.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from llm_cost_tracker.scheduler import Problem, read_batch, read_jobshop, read_psplib
from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import Activity, Mode, Resource, compile_problem
from llm_cost_tracker.scheduler.sgs import justify, serial_sgs
from tests.scheduler.conftest import TESTDATA
from tests.scheduler.sgs_reference import previous_serial_sgs

PUBLIC = TESTDATA / "public"
"""Seven public PSPLIB/JSPLIB instances shipped with the tests (testdata/public/README.md)."""


def _assert_same_starts(p: Problem, pop: int, seed: int) -> None:
    """Random lists and modes decode identically forward, backward and through justification."""
    a = compile_problem(p)
    rng = np.random.default_rng(seed)
    order = sample_lists(pop, a, rng, rng.uniform(0, 2, pop))
    # valid modes only, as every operator draws them: a mode that exceeds a capacity has no
    # feasible start, and what a decoder returns for it is not a schedule (nor compared)
    pick = np.floor(rng.random((pop, a.n)) * a.valid.sum(axis=1)).astype(np.int64)
    modes = np.argsort(~a.valid, axis=1, kind="stable")[np.arange(a.n)[None, :], pick]
    new = serial_sgs(order, modes, a)
    assert np.array_equal(new, previous_serial_sgs(order, modes, a))
    back = np.ascontiguousarray(order[:, ::-1])  # a forward list reversed is feasible backwards
    assert np.array_equal(
        serial_sgs(back, modes, a, reverse=True), previous_serial_sgs(back, modes, a, reverse=True)
    )
    _, fwd_order = justify(new, modes, a)
    assert np.array_equal(serial_sgs(fwd_order, modes, a), previous_serial_sgs(fwd_order, modes, a))


def _batch_like(n: int, seed: int) -> Problem:
    """Jobs on three "providers" (a concurrency and a token-rate resource each, one without a rate),
    one mode per provider a job may use, zero-duration jobs, dependencies on recent jobs."""
    rng = random.Random(seed)
    caps = [16, 400, 8, 250, 4]
    providers = [(0, 1), (2, 3), (4,)]
    acts: list[Activity] = []
    succ: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for _ in range(rng.choice([0, 1, 1, 2])):
            if i:
                succ[rng.randint(max(0, i - 30), i - 1)].append(i)
    for i in range(n):
        modes = []
        for prov in rng.sample(providers, rng.randint(1, 3)):
            need = [0] * len(caps)
            conc = rng.choice([1, 1, 2, 4])
            for r in prov:
                need[r] = conc if caps[r] <= 16 else rng.randint(1, caps[r] // 2)
            need[prov[0]] = min(need[prov[0]], caps[prov[0]])
            modes.append(Mode(duration=rng.choice([0, 1, 3, 7, 20, 45]), renewable=tuple(need)))
        acts.append(Activity(id=f"j{i}", modes=tuple(modes), successors=tuple(sorted(set(succ[i])))))
    return Problem(
        name=f"batch-like-{n}",
        activities=tuple(acts),
        renewable=tuple(Resource(f"r{k}", c) for k, c in enumerate(caps)),
    )


@pytest.mark.parametrize(
    "name", ["small.sm", "tiny.sm", "tiny.mm", "tiny.jsp", "batch.json", "psplib/j30/j3012_1.sm"]
)
def test_shipped_instances_decode_as_before(name: str) -> None:
    path = TESTDATA / name
    if name.endswith(".jsp"):
        p = read_jobshop(path)
    elif name.endswith(".json"):
        p = read_batch(path).problem
    else:
        p = read_psplib(path)
    _assert_same_starts(p, 40, 3)


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_batch_decodes_as_before(seed: int) -> None:
    _assert_same_starts(_batch_like(300, seed), 32, seed)


@pytest.mark.parametrize(
    "rel",
    [
        "psplib/j30/j3025_2.sm",
        "psplib/j120/j12041_2.sm",
        "psplib/j120/j1207_1.sm",
        "psplib/mrcpsp-j30/j3012_1.mm",
        "psplib/mrcpsp-j30/j3049_1.mm",  # has modes that exceed a capacity
        "jsplib/ft10",
        "jsplib/la06",
    ],
)
def test_public_instances_decode_as_before(rel: str) -> None:
    path = PUBLIC / rel
    p = read_jobshop(path) if rel.startswith("jsplib") else read_psplib(path)
    _assert_same_starts(p, 32, 5)
