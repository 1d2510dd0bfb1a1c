"""Decomposition (issue 20): a window of a schedule re-solved against the residual capacity and the
release and due times its outside leaves. Every sub-schedule is feasible for the whole schedule, so
the result is a valid schedule no longer than the input, and its decodes are counted exactly."""

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
    read_jobshop,
    read_psplib,
)
from llm_cost_tracker.scheduler.decomposition import improve_window
from llm_cost_tracker.scheduler.directions import decode
from llm_cost_tracker.scheduler.modes import feasible_modes
from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import Problem, compile_problem
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
INSTANCES = [
    PUBLIC / "psplib" / "j120" / "j1207_1.sm",
    PUBLIC / "psplib" / "j120" / "j12041_2.sm",
    PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm",
]


def _makespan(p: Problem, starts: np.ndarray, modes: np.ndarray) -> int:
    return max(int(s) + p.activities[j].modes[int(m)].duration for j, (s, m) in enumerate(zip(starts, modes, strict=True)))


@pytest.mark.parametrize("where", [{}, {"tail": 1.0}, {"valley": 1.0}], ids=["anywhere", "tail", "valley"])
@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.name)
def test_window_resolved_against_its_boundary_is_valid_and_never_longer(path: object, where: dict[str, float]) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    p = read_psplib(path)
    a = compile_problem(p)
    rng = np.random.default_rng(3)
    _, base, _ = feasible_modes(a)  # a mode vector within the non-renewable capacities
    assert base is not None
    modes = np.repeat(base[None, :], 12, axis=0)
    starts = decode(sample_lists(12, a, rng, np.ones(12)), modes, a, backward=False)
    changed = 0
    for st, md in zip(starts, modes, strict=True):
        out, spent = improve_window(st, md, a, rng, 24, donors=starts, **where)
        assert spent in (23, 24)  # one decode is kept for the left shift, spent only after a gain
        assert check_schedule(p, [int(x) for x in out], [int(x) for x in md]) == []
        assert _makespan(p, out, md) <= _makespan(p, st, md)
        changed += bool((out != st).any())
    if path.suffix == ".sm":  # random j120 lists leave room: some windows pack tighter
        assert changed > 0


@pytest.mark.parametrize("budget", [1, 64, 100, 997])
def test_search_with_decomposition_valid_deterministic_and_on_budget(budget: int) -> None:
    p = read_psplib(INSTANCES[0])
    settings = replace(AnnealingSettings(), decompose_every=2, decompose_decodes=16)
    r1 = minimize(p, QuantumAnnealing(settings), MaxSchedules(budget), seed=5)
    r2 = minimize(p, QuantumAnnealing(settings), MaxSchedules(budget), seed=5)
    assert r1.schedule is not None and r1.schedule == r2.schedule
    assert check_schedule(p, r1.schedule.starts, r1.schedule.modes) == []
    assert r1.schedules_evaluated == r2.schedules_evaluated == budget


def test_decomposition_on_a_job_shop_keeps_schedules_valid() -> None:
    path = next((PUBLIC / "jsplib").iterdir())
    p = read_jobshop(path)
    settings = replace(AnnealingSettings(), decompose_every=1, decompose_decodes=8)
    r = minimize(p, QuantumAnnealing(settings), MaxSchedules(600), seed=2)
    assert r.schedule is not None and r.schedules_evaluated == 600
    assert check_schedule(p, r.schedule.starts, r.schedule.modes) == []
