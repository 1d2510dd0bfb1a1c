"""The annealing optimizer: optimality on brute-forced instances, budgets, seeds, infeasibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    Activity,
    AnnealingSettings,
    InfeasibleError,
    MaxSchedules,
    Mode,
    Problem,
    QuantumAnnealing,
    Resource,
    SolveSettings,
    check_schedule,
    minimize,
    optimize,
    read_jobshop,
    read_psplib,
)
from llm_cost_tracker.scheduler.modes import Status, feasible_modes
from llm_cost_tracker.scheduler.problem import compile_problem
from tests.scheduler.conftest import TESTDATA, brute_force_makespan


def _solve(problem: Problem, budget: int = 600, seed: int = 0, **kw: float) -> object:
    return optimize(
        problem, SolveSettings(max_schedules=budget, time_limit=None, seed=seed, annealing=AnnealingSettings(**kw))
    )


def test_tiny_sm_optimum_is_nine_and_found() -> None:
    """The hand-checked optimum 9 of tiny.sm equals the brute force and the optimizer reaches it."""
    p = read_psplib(TESTDATA / "tiny.sm")
    assert brute_force_makespan(p) == 9
    r = _solve(p)
    assert r.success and r.schedule.makespan == 9  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["small.sm", "tiny.mm"])
def test_optimizer_matches_brute_force_optimum(name: str) -> None:
    """On instances small enough to enumerate, the best schedule found is optimal and feasible."""
    p = read_psplib(TESTDATA / name)
    r = _solve(p, budget=1500)
    s = r.schedule  # type: ignore[attr-defined]
    assert check_schedule(p, s.starts, s.modes) == []
    assert s.makespan == brute_force_makespan(p)


def test_jobshop_3x3_reaches_brute_force_optimum() -> None:
    """The handmade 3x3 job shop is solved to the optimum found by enumeration."""
    p = read_jobshop(TESTDATA / "tiny.jsp")
    r = _solve(p, budget=3000)
    s = r.schedule  # type: ignore[attr-defined]
    assert check_schedule(p, s.starts, s.modes) == []
    assert s.makespan == brute_force_makespan(p)


def test_same_seed_same_schedule_and_different_seed_runs() -> None:
    """Two runs with one seed return identical schedules and counts."""
    p = read_psplib(TESTDATA / "small.sm")
    a, b = _solve(p, 900, seed=42), _solve(p, 900, seed=42)
    assert a.schedule == b.schedule and a.front == b.front  # type: ignore[attr-defined]
    assert a.schedules_evaluated == b.schedules_evaluated  # type: ignore[attr-defined]


@pytest.mark.parametrize("budget", [1, 2, 31, 100, 997])
def test_budget_is_spent_exactly_never_exceeded(budget: int) -> None:
    """Every decoded schedule and justification pass counts, and the total stops at the budget."""
    p = read_psplib(TESTDATA / "small.sm")
    algo = QuantumAnnealing(AnnealingSettings(replicas=16))
    counted = 0
    original = algo._evaluate

    def spy(order, modes, rows):  # type: ignore[no-untyped-def]
        nonlocal counted
        before = algo.schedules_evaluated
        out = original(order, modes, rows)
        counted += algo.schedules_evaluated - before
        return out

    algo._evaluate = spy  # type: ignore[method-assign]
    r = minimize(p, algo, MaxSchedules(budget), seed=1)
    assert r.schedules_evaluated == budget
    assert counted == r.schedules_evaluated


def test_uncoupled_chains_also_solve_tiny_instance() -> None:
    """With coupling and exchange switched off the independent chains still find the optimum."""
    p = read_psplib(TESTDATA / "tiny.sm")
    r = _solve(p, coupling=0.0, exchange=0.0)
    assert r.schedule.makespan == 9  # type: ignore[attr-defined]


def test_infeasible_budget_raises() -> None:
    """A non-renewable capacity below the least-consuming modes is reported as infeasible."""
    p = read_psplib(TESTDATA / "infeasible.mm")
    with pytest.raises(InfeasibleError, match="least-consuming"):
        _solve(p)


def test_reachability_proves_combinatorial_infeasibility() -> None:
    """Two resources whose bounds pass but no mode combination fits are proven infeasible."""
    modes = (Mode(1, (), (2, 0)), Mode(1, (), (0, 2)))
    acts = (Activity("a", modes, (1,)), Activity("b", modes))
    p = Problem("x", acts, nonrenewable=(Resource("n1", 2), Resource("n2", 1)))
    status, vec, why = feasible_modes(compile_problem(p))
    assert status is Status.INFEASIBLE and vec is None and "no combination" in why
    ok = Problem("y", acts, nonrenewable=(Resource("n1", 2), Resource("n2", 2)))
    status, vec, _ = feasible_modes(compile_problem(ok))
    assert status is Status.FEASIBLE and vec is not None and sorted(vec.tolist()) == [0, 1]


def test_result_reports_budget_and_success() -> None:
    """The result states success, the schedules used and a message."""
    r = _solve(read_psplib(TESTDATA / "small.sm"), budget=300)
    assert r.success and r.schedules_evaluated == 300 and "300" in r.message  # type: ignore[attr-defined]


def test_public_j30_instances_reach_optimum(bench_data: Path) -> None:
    """Two easy j30 instances are solved to their proven optimum within 3,000 schedules."""
    import csv

    rows = {r["instance"]: int(r["best_ub"]) for r in csv.DictReader(open(bench_data / "psplib" / "bounds.csv"))}
    for name in ("j301_1", "j3010_1"):
        p = read_psplib(bench_data / "psplib" / "j30" / f"{name}.sm")
        r = _solve(p, budget=3000, seed=3)
        s = r.schedule  # type: ignore[attr-defined]
        assert check_schedule(p, s.starts, s.modes) == []
        assert s.makespan == rows[name]
        assert np.isfinite(r.hypervolume)  # type: ignore[attr-defined]


def test_tournament_partner_is_another_slice_and_the_better_of_two() -> None:
    """A crossover partner is never the slice itself, and it wins its tournament."""
    algo = QuantumAnnealing(AnnealingSettings(replicas=8, partner="tournament", selection="metropolis"))
    algo.setup(read_psplib(TESTDATA / "small.sm"), MaxSchedules(200), seed=5)
    algo.objs = np.zeros((8, 3))
    algo.objs[:, 0] = np.arange(8)[::-1]  # slice 7 is the best, slice 0 the worst
    algo.exc = np.zeros(8, np.int64)
    partners = np.stack([algo._partners() for _ in range(200)])
    assert (partners != np.arange(8)[None, :]).all()
    assert (partners == 7).mean() > 0.2  # the best slice wins every tournament it enters
    assert (partners[:, 7] != 7).all()


@pytest.mark.parametrize("budget", [31, 100, 997])
def test_initial_pool_is_counted_and_budget_exact(budget: int) -> None:
    """Every forward decode of the initial pool counts, and the total still stops at the budget."""
    p = read_psplib(TESTDATA / "small.sm")
    r = _solve(p, budget=budget, seed=2, init_pool=4)
    assert r.schedules_evaluated == budget  # type: ignore[attr-defined]
    s = r.schedule  # type: ignore[attr-defined]
    assert check_schedule(p, s.starts, s.modes) == []


def test_ring_partner_still_available() -> None:
    """The earlier neighbour-only exchange remains an option and still solves the tiny instance."""
    p = read_psplib(TESTDATA / "tiny.sm")
    r = _solve(p, partner="ring", exchange=0.5)
    assert r.schedule.makespan == 9  # type: ignore[attr-defined]


def test_placement_cap_scales_the_schedule_budget_with_the_problem_size() -> None:
    """A solve spends at most ``max_placements // n`` schedules, never fewer than one population,
    and the fast cap leaves 5,000 schedules of a 122-activity instance untouched; the default is no cap."""
    from llm_cost_tracker.scheduler.solve import FAST_PLACEMENTS, schedule_budget

    p = read_psplib(TESTDATA / "small.sm")
    settings = SolveSettings(max_schedules=900, time_limit=None, seed=3, max_placements=p.n * 70)
    assert optimize(p, settings).schedules_evaluated == 70
    assert optimize(p, SolveSettings(max_schedules=900, time_limit=None, seed=3)).schedules_evaluated == 900
    fast = SolveSettings(max_placements=FAST_PLACEMENTS)
    assert schedule_budget(fast, 122) == 5000
    assert schedule_budget(fast, 1000) == 610
    assert schedule_budget(fast, 10**7) == fast.annealing.replicas
    assert schedule_budget(SolveSettings(), 10**7) == 5000  # no cap by default
