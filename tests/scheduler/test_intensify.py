"""The elitist search's second phase (intensify.py): neighbour lists stay precedence-feasible in both
directions and close to their schedule, the rebuild happens once at its progress, keeps the best,
counts every neighbour it decodes, and leaves multi-mode problems alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    check_schedule,
    minimize,
    read_psplib,
)
from llm_cost_tracker.scheduler.directions import decode, list_of
from llm_cost_tracker.scheduler.intensify import neighbour_lists
from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import compile_problem
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"
MM = PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm"
ON = replace(AnnealingSettings(), intensify_at=0.5)  # off by default (docs/scheduler.md)


@pytest.mark.parametrize("backward", [False, True])
def test_neighbour_lists_are_feasible_close_and_noise_free_lists_are_the_schedules_own(backward: bool) -> None:
    p = read_psplib(J120)
    a = compile_problem(p)
    rng = np.random.default_rng(3)
    modes = np.zeros((16, a.n), np.int64)
    start = decode(sample_lists(16, a, rng, rng.uniform(0, 2, 16)), modes, a, backward=False)
    own = list_of(start, modes, a, backward=backward)
    assert (neighbour_lists(start, modes, a, rng, 0.0, backward=backward) == own).all()
    for noise in (1.0, 2.0, 50.0):
        lists = neighbour_lists(start, modes, a, rng, noise, backward=backward)
        pos = np.argsort(lists, axis=1)
        for i, act in enumerate(p.activities):
            for s in act.successors:  # a backward list is feasible for the reversed graph
                assert ((pos[:, s] > pos[:, i]) != backward).all()
        moved = np.abs(pos - np.argsort(own, axis=1)).mean()
        assert moved > 0  # the noise reorders something
        if noise <= 2.0:
            assert moved < a.n / 8  # and only locally
        for st in decode(lists, modes, a, backward=backward):
            assert check_schedule(p, [int(x) for x in st], [0] * a.n) == []


@pytest.mark.parametrize("budget", [1, 64, 100, 2000, 2049, 2555])
def test_rebuild_keeps_the_budget_exact_and_the_schedule_valid(budget: int) -> None:
    p = read_psplib(J120)
    r1 = minimize(p, QuantumAnnealing(ON), MaxSchedules(budget), seed=5)
    r2 = minimize(p, QuantumAnnealing(ON), MaxSchedules(budget), seed=5)
    assert r1.schedule is not None and r1.schedule == r2.schedule
    assert check_schedule(p, r1.schedule.starts, r1.schedule.modes) == []
    assert r1.schedules_evaluated == budget


def test_rebuild_happens_once_at_its_progress_keeps_the_best_and_counts_its_decodes() -> None:
    p = read_psplib(J120)
    algo = QuantumAnnealing(replace(ON, intensify_noise=1.0, intensify_spread=10**9, shrink_to=0))  # 64 throughout
    algo.setup(p, MaxSchedules(4000), seed=2)
    rebuilds = 0
    while algo.has_next():
        before, at = algo.schedules_evaluated, algo.rebuild_at
        best_before = float(algo.f.min())
        algo.next()
        spent = algo.schedules_evaluated - before
        if at <= 1.0 and algo.rebuild_at > 1.0:  # this generation rebuilt
            rebuilds += 1
            assert (before - 64) / 4000 < 0.5 <= before / 4000  # the first generation from half the budget
            assert spent == 64 + 63  # the children, then 63 decoded neighbours of the best
            assert float(algo.f[0]) <= best_before
            assert algo.pop == 64
        else:
            assert spent == min(64, 4000 - before)
    assert rebuilds == 1 and algo.schedules_evaluated == 4000


@pytest.mark.parametrize("budget", [700, 6000])
def test_rebuild_waits_for_a_population_on_one_makespan(budget: int) -> None:
    """From half the budget on, the default rebuilds only a population whose makespans lie within a
    slot of each other: a short run on j120 never gets there, a long one does."""
    p = read_psplib(J120)
    calls: list[tuple[float, float]] = []
    for spread in (ON.intensify_spread, 10**9):
        algo = QuantumAnnealing(replace(ON, intensify_spread=spread))
        rebuild = algo._rebuild

        def spy() -> None:
            calls.append((algo.schedules_evaluated / budget, float(np.ptp(algo.objs[:, 0]))))  # noqa: B023
            rebuild()  # noqa: B023

        algo._rebuild = spy  # type: ignore[method-assign]
        r = minimize(p, algo, MaxSchedules(budget), seed=3)
        assert r.schedules_evaluated == budget
        assert r.schedule is not None and check_schedule(p, r.schedule.starts, r.schedule.modes) == []
    waited, eager = calls[:-1], calls[-1]
    assert eager[0] >= 0.5  # without the condition: the first generation from half the budget
    if budget == 700:
        assert waited == [] and eager[1] > 0
    else:
        assert len(waited) == 1 and waited[0][0] >= 0.5 and waited[0][1] <= ON.intensify_spread


def test_no_rebuild_by_default_when_switched_off_or_where_modes_vary() -> None:
    j120 = read_psplib(J120)
    for settings in (AnnealingSettings(), replace(ON, intensify_at=0.0)):
        off = QuantumAnnealing(settings)
        off.setup(j120, MaxSchedules(500), seed=1)
        assert off.rebuild_at > 1.0
    on = QuantumAnnealing(ON)
    on.setup(j120, MaxSchedules(500), seed=1)
    assert on.rebuild_at == 0.5
    multi = QuantumAnnealing(ON)
    multi.setup(read_psplib(MM), MaxSchedules(500), seed=1)
    assert multi.elitist and multi.rebuild_at > 1.0
    eager = replace(ON, intensify_spread=10**9)
    pops = []
    for algo in (QuantumAnnealing(eager), QuantumAnnealing()):
        algo.setup(j120, MaxSchedules(1500), seed=4)
        while algo.has_next():
            algo.next()
        pops.append(algo.start)
    # the phase changes the search (its population: both runs may well end on the same best schedule)
    assert pops[0].shape != pops[1].shape or (pops[0] != pops[1]).any()
