"""The serial SGS and the mode repair give exactly the results of their previous versions (issue 20).

The search's results depend on every decoded start time and every repaired mode, so a faster
decoder or repair must not move one. The previous vectorized decoder and justification are kept in
``sgs_reference.py`` and the previous repair in ``modes_reference.py``; these tests run both on the
same random lists and modes, forward, on the reversed graph and through justification, on the
shipped instances, generated task-batch-like problems (zero durations, jobs that demand only some
resources, batch-tier modes that demand none, a budget) and seven public benchmark instances
shipped in testdata/public. The decoder is a compiled loop (``compiled.py``); one test runs its
Python source uncompiled against the compiled code.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from llm_cost_tracker.scheduler import Problem, read_batch, read_jobshop, read_psplib, sgs
from llm_cost_tracker.scheduler.modes import excess, repair
from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import Activity, Mode, Resource, compile_problem
from llm_cost_tracker.scheduler.sgs import justify, order_of, serial_sgs
from tests.scheduler.conftest import TESTDATA
from tests.scheduler.modes_reference import previous_repair
from tests.scheduler.sgs_reference import previous_justify, previous_serial_sgs

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
    got, want = justify(new, modes, a), previous_justify(new, modes, a)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    rank = np.broadcast_to(a.rank, new.shape)
    assert np.array_equal(order_of(new, a), np.lexsort((rank, new), axis=1))


def _batch_like(n: int, seed: int, tiers: bool = False, budget: bool = False) -> Problem:
    """Jobs on three "providers" (a concurrency and a token-rate resource each, one without a rate),
    one mode per provider a job may use, zero-duration jobs, dependencies on recent jobs; with
    ``tiers`` a third of the jobs get a long mode that demands no resource (a batch tier), with
    ``budget`` every mode costs money and the budget is a third of the way from the cheapest plan
    to the dearest."""
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
        if tiers and rng.random() < 0.3:
            modes.append(Mode(duration=rng.choice([60, 240]), renewable=(0,) * len(caps)))
        if budget:
            modes = [Mode(m.duration, m.renewable, (c,), c) for m in modes for c in [rng.randint(1, 1000)]]
        acts.append(Activity(id=f"j{i}", modes=tuple(modes), successors=tuple(sorted(set(succ[i])))))
    least = sum(min(m.cost for m in act.modes) for act in acts)
    most = sum(max(m.cost for m in act.modes) for act in acts)
    return Problem(
        name=f"batch-like-{n}",
        activities=tuple(acts),
        renewable=tuple(Resource(f"r{k}", c) for k, c in enumerate(caps)),
        nonrenewable=(Resource("budget", least + (most - least) // 3),) if budget else (),
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


def test_generated_batch_with_tier_modes_decodes_as_before() -> None:
    """Modes that demand no resource are placed at their earliest start, between the others."""
    _assert_same_starts(_batch_like(400, 3, tiers=True), 24, 3)


def test_compiled_decoder_equals_its_python_source() -> None:
    """The compiled loop and the same function run by the interpreter give the same start times
    (numba's integer and slicing semantics are the ones the source reads as)."""
    a = compile_problem(_batch_like(60, 4, tiers=True))
    rng = np.random.default_rng(4)
    order = sample_lists(4, a, rng, rng.uniform(0, 2, 4))
    pick = np.floor(rng.random((4, a.n)) * a.valid.sum(axis=1)).astype(np.int64)
    modes = np.argsort(~a.valid, axis=1, kind="stable")[np.arange(a.n)[None, :], pick]
    interpreted = np.zeros(order.shape, np.int64)
    sgs._decode.py_func(order, modes, a.dur, a.need_r, a.need_q, a.need_k, a.pred_pad, a.cap, interpreted)
    assert np.array_equal(serial_sgs(order, modes, a), interpreted)
    assert np.array_equal(interpreted, previous_serial_sgs(order, modes, a))


@pytest.mark.parametrize(
    "source", ["batch-like", "batch.json", "psplib/mrcpsp-j30/j3012_1.mm", "psplib/mrcpsp-j30/j3049_1.mm"]
)
def test_repair_chooses_the_same_modes_and_draws_the_same_numbers(source: str) -> None:
    """From random mode vectors (most over the budget) the compiled repair ends where the
    vectorized one did, with the generator in the same state."""
    if source == "batch-like":
        p = _batch_like(300, 5, tiers=True, budget=True)
    elif source == "batch.json":
        p = read_batch(TESTDATA / source).problem
    else:
        p = read_psplib(PUBLIC / source)
    a = compile_problem(p)
    over = 0
    for seed in range(4):
        start = np.floor(np.random.default_rng(seed).random((32, a.n)) * a.nmodes).astype(np.int64)
        over += int((excess(start, a) > 0).sum())
        rng_new, rng_old = np.random.default_rng(seed), np.random.default_rng(seed)
        fallback = np.zeros(a.n, np.int64)
        assert np.array_equal(repair(start, a, rng_new, fallback), previous_repair(start, a, rng_old, fallback))
        assert rng_new.random() == rng_old.random()
    assert over > 0  # the repair had work to do


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
