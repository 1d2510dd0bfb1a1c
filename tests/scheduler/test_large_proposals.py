"""Proposals of a large single-mode search (``large``, ``large_exchange``, ``large_peak``): from 60
activities with two populations every proposal is a crossover and 70% of the crossovers take the
partner's densest window; smaller instances, multi-mode problems and task batches read ``exchange``
and ``peak`` as before, so their schedules are the ones they were. Every decode still counts once and
every schedule passes the checker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    check_schedule,
    read_batch,
    read_jobshop,
    read_psplib,
)
from llm_cost_tracker.scheduler import annealing as annealing_mod
from llm_cost_tracker.scheduler.problem import Problem
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"
J30 = PUBLIC / "psplib" / "j30" / "j3025_2.sm"
MM = PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm"
LA06 = PUBLIC / "jsplib" / "la06"


def _run(p: Problem, settings: AnnealingSettings, budget: int = 1200, seed: int = 3) -> list[np.ndarray]:
    algo = QuantumAnnealing(settings)
    algo.setup(p, MaxSchedules(budget), seed=seed)
    seen = [algo.start.copy()]
    while algo.has_next():
        algo.next()
        seen.append(algo.start.copy())
    return seen


def _same(x: list[np.ndarray], y: list[np.ndarray]) -> bool:
    return len(x) == len(y) and all(np.array_equal(a, b) for a, b in zip(x, y, strict=True))


def _crossover_share(p: Problem, monkeypatch: pytest.MonkeyPatch) -> float:
    """Share of the proposals of a default search handed to the crossover as active."""
    active: list[np.ndarray] = []
    exchange = annealing_mod.ops.exchange

    def spy(order, modes, partner, rng, act, cuts=None):  # type: ignore[no-untyped-def]
        active.append(np.asarray(act))
        return exchange(order, modes, partner, rng, act, cuts)

    monkeypatch.setattr(annealing_mod.ops, "exchange", spy)
    _run(p, AnnealingSettings(), budget=1000)
    return float(np.concatenate(active).mean())


def test_a_large_single_mode_search_proposes_crossovers_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _crossover_share(read_psplib(J120), monkeypatch) == 1.0


@pytest.mark.parametrize("path", [J30, MM])
def test_small_and_multi_mode_searches_keep_exchange(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """j30 (32 activities, two populations) and multi-mode j30 (one population): ``exchange`` (0.8)."""
    assert 0.7 < _crossover_share(read_psplib(path), monkeypatch) < 0.9


def test_large_settings_are_read_only_where_they_apply() -> None:
    """On j120 the default is ``large_*`` (``exchange``/``peak`` unread; ``large`` out of reach gives the
    earlier proposals, other schedules); on j30, multi-mode j30 and a task batch the ``large_*`` values
    are never read, so the default's schedules are those of the settings before them."""
    j120 = read_psplib(J120)
    default = _run(j120, AnnealingSettings())
    assert _same(default, _run(j120, replace(AnnealingSettings(), exchange=0.1, peak=0.0)))
    assert not _same(default, _run(j120, replace(AnnealingSettings(), large=10**6)))
    unread = replace(AnnealingSettings(), large_exchange=0.1, large_peak=0.0)
    for p in (read_psplib(J30), read_psplib(MM), read_batch(TESTDATA / "batch.json").problem):
        assert _same(_run(p, AnnealingSettings(), budget=600), _run(p, unread, budget=600))


@pytest.mark.parametrize("budget", [1, 2, 63, 65, 130, 997, 3000])
@pytest.mark.parametrize("which", ["j120", "la06"])
def test_every_decode_counted_once_and_every_schedule_valid(
    which: str, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows handed to the decoder add up to the count, which stops exactly at the budget, and
    every decoded schedule passes the checker (j120 and a 77-operation job shop, both large)."""
    p = read_psplib(J120) if which == "j120" else read_jobshop(LA06)
    decoded = 0
    bad: list[str] = []
    decode = annealing_mod.directions.decode

    def spy(order, modes, a, *, backward, parallel=None):  # type: ignore[no-untyped-def]
        nonlocal decoded
        decoded += order.shape[0]
        start = decode(order, modes, a, backward=backward, parallel=parallel)
        for st, md in zip(start, modes, strict=True):
            bad.extend(check_schedule(p, [int(x) for x in st], [int(x) for x in md]))
        return start

    monkeypatch.setattr(annealing_mod.directions, "decode", spy)
    algo = QuantumAnnealing(AnnealingSettings())
    algo.setup(p, MaxSchedules(budget), seed=2)
    assert algo.exchange == 1.0 and algo.peak == 0.7
    while algo.has_next():
        algo.next()
    assert algo.result().schedules_evaluated == decoded == budget
    assert bad == []
