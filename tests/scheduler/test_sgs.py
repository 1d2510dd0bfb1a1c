"""The vectorized serial SGS and justification against the loop-based reference and checker."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llm_cost_tracker.scheduler import check_schedule, read_jobshop, read_psplib
from llm_cost_tracker.scheduler.operators import sample_lists, shift
from llm_cost_tracker.scheduler.problem import compile_problem
from llm_cost_tracker.scheduler.sgs import justify, serial_sgs
from tests.scheduler.conftest import TESTDATA, reference_sgs


def _random_lists(path: Path, pop: int, seed: int, jobshop: bool = False):  # type: ignore[no-untyped-def]
    p = read_jobshop(path) if jobshop else read_psplib(path)
    a = compile_problem(p)
    rng = np.random.default_rng(seed)
    order = sample_lists(pop, a, rng, rng.uniform(0, 2, pop))
    modes = np.floor(rng.random((pop, a.n)) * a.nmodes).astype(np.int64)
    return p, a, order, modes


def test_vectorized_sgs_equals_reference_sgs_per_replica() -> None:
    """Every replica decodes to exactly the start times of the textbook per-list SGS."""
    for name, js in (("small.sm", False), ("tiny.mm", False), ("tiny.jsp", True)):
        p, a, order, modes = _random_lists(TESTDATA / name, 40, 3, js)
        start = serial_sgs(order, modes, a)
        for r in range(order.shape[0]):
            assert list(start[r]) == reference_sgs(p, list(order[r]), list(modes[r]))


def test_justification_is_feasible_and_never_longer() -> None:
    """Forward-backward improvement keeps schedules feasible and never increases the makespan."""
    p, a, order, modes = _random_lists(TESTDATA / "small.sm", 64, 5)
    start = serial_sgs(order, modes, a)
    before = (start + a.dur[np.arange(a.n), modes]).max(axis=1)
    new_start, new_order = justify(start, modes, a)
    after = (new_start + a.dur[np.arange(a.n), modes]).max(axis=1)
    assert (after <= before).all()
    for r in range(order.shape[0]):
        assert check_schedule(p, list(new_start[r]), list(modes[r])) == []
    assert (serial_sgs(new_order, modes, a) == new_start).all()


def test_shift_move_keeps_lists_precedence_feasible() -> None:
    """Many shift moves in a row never put an activity before one of its predecessors."""
    p, a, order, _ = _random_lists(TESTDATA / "small.sm", 32, 7)
    rng = np.random.default_rng(1)
    for _ in range(50):
        order = shift(order, a, rng, np.ones(order.shape[0], bool))
    for lst in order:
        pos = {int(x): i for i, x in enumerate(lst)}
        assert sorted(pos) == list(range(a.n))
        for i, act in enumerate(p.activities):
            assert all(pos[i] < pos[s] for s in act.successors)


def test_public_j30_decodes_feasibly(bench_data: Path) -> None:
    """Random lists for a real j30 instance decode to schedules the independent checker accepts."""
    p, a, order, modes = _random_lists(bench_data / "psplib" / "j30" / "j3012_1.sm", 16, 2)
    start = serial_sgs(order, modes, a)
    for r in range(16):
        assert check_schedule(p, list(start[r]), list(modes[r])) == []


def test_sgs_equals_reference_when_activities_demand_different_resources() -> None:
    """A task batch: each job demands only its provider's resources, and a list position where no
    replica's job demands a resource skips that resource's profile; starts still match the reference."""
    from llm_cost_tracker.scheduler import read_batch

    p = read_batch(TESTDATA / "batch.json").problem
    a = compile_problem(p)
    rng = np.random.default_rng(11)
    order = sample_lists(48, a, rng, rng.uniform(0, 2, 48))
    modes = np.floor(rng.random((48, a.n)) * a.nmodes).astype(np.int64)
    start = serial_sgs(order, modes, a)
    for r in range(order.shape[0]):
        assert list(start[r]) == reference_sgs(p, list(order[r]), list(modes[r]))


def test_mode_repair_fixes_replicas_over_budget_and_leaves_the_others() -> None:
    """Repair works only on mode vectors over a non-renewable capacity; vectors within it are untouched."""
    from llm_cost_tracker.scheduler import modes as modes_mod

    p = read_psplib(TESTDATA / "tiny.mm")
    a = compile_problem(p)
    rng = np.random.default_rng(5)
    modes = np.floor(rng.random((64, a.n)) * a.nmodes).astype(np.int64)
    before = modes_mod.excess(modes, a)
    assert (before > 0).any() and (before == 0).any()
    fixed = modes_mod.repair(modes, a, np.random.default_rng(6), None)
    assert (fixed[before == 0] == modes[before == 0]).all()
    assert (modes_mod.excess(fixed, a) <= before).all()
    assert (modes_mod.excess(fixed, a)[before > 0] < before[before > 0]).all()


def test_modes_over_a_capacity_do_not_stall_the_decoder() -> None:
    """A mode over a renewable capacity fits nowhere: the decoder still returns (such an activity is
    put at the busy end), and every replica without one decodes exactly as the textbook SGS."""
    path = TESTDATA / "public" / "psplib" / "mrcpsp-j30" / "j3049_1.mm"
    p, a, order, modes = _random_lists(path, 32, 9)
    invalid = ~a.valid[np.arange(a.n)[None, :], modes].all(axis=1)
    assert invalid.any() and (~invalid).any()
    start = serial_sgs(order, modes, a)
    assert (start >= 0).all()
    for r in np.flatnonzero(~invalid):
        assert list(start[r]) == reference_sgs(p, list(order[r]), list(modes[r]))
