"""Ruin and recreate (ruin.py): a window of a member's list re-sequenced, everything else kept, every
list precedence-feasible; with the option on every decode is still counted once and every schedule
valid; with it off (the default) the search draws and decodes exactly what it did without it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    check_schedule,
    directions,
    read_psplib,
)
from llm_cost_tracker.scheduler import annealing as annealing_mod
from llm_cost_tracker.scheduler.problem import Arrays, compile_problem
from llm_cost_tracker.scheduler.ruin import RULES, Ruin
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"
RUIN = replace(AnnealingSettings(), ruin=0.3, ruin_from=0.2)


def _feasible(lists: np.ndarray, a: Arrays, *, backward: bool) -> bool:
    pos = np.empty_like(lists)
    np.put_along_axis(pos, lists, np.arange(a.n)[None, :], axis=1)
    preds = a.succ_pad if backward else a.pred_pad
    pad = np.concatenate([pos, np.full((pos.shape[0], 1), -1)], axis=1)
    return bool((pad[:, preds].max(axis=2) < pos).all())


def _schedules(a: Arrays, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Start times of ``k`` random serial decodes (the lists sampled as the search's start population)."""
    from llm_cost_tracker.scheduler import operators as ops

    order = ops.sample_lists(k, a, rng, rng.uniform(0, 2, k))
    modes = np.zeros((k, a.n), np.int64)
    return directions.decode(order, modes, a, backward=False), modes


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("backward", [False, True])
def test_a_recreated_list_changes_one_window_only_and_stays_feasible(rule: str, backward: bool) -> None:
    """Every row is its parent's list outside one stretch; the stretch holds the same activities (those
    of a time window of the schedule), in an order that differs for some rows, and the list keeps the
    direction's precedence order."""
    a = compile_problem(read_psplib(J120))
    rng = np.random.default_rng(7)
    start, modes = _schedules(a, rng, 48)
    lists = directions.list_of(start, modes, a, backward=backward)
    ruin = Ruin(a, share=1.0, after=0.0, size=0.3, peak=0.5, rule=rule, bias=1.0)
    out = ruin.apply(lists.copy(), lists, start, modes, 0.9, rng, backward=backward)
    assert _feasible(out, a, backward=backward)
    changed = 0
    for old, new in zip(lists, out, strict=True):
        diff = np.flatnonzero(old != new)
        if diff.size == 0:
            continue
        changed += 1
        lo, hi = diff[0], diff[-1] + 1
        assert sorted(old[lo:hi]) == sorted(new[lo:hi])
    assert changed > 24


def test_inactive_before_its_progress_and_at_share_zero() -> None:
    a = compile_problem(read_psplib(J120))
    rng = np.random.default_rng(1)
    start, modes = _schedules(a, rng, 8)
    lists = directions.list_of(start, modes, a, backward=False)
    ruin = Ruin(a, share=1.0, after=0.5, size=0.3, peak=1.0, rule="work", bias=1.0)
    state = rng.bit_generator.state
    assert ruin.apply(lists, lists, start, modes, 0.4, rng, backward=False) is lists
    assert rng.bit_generator.state == state  # nothing drawn: the search's random stream is untouched
    with pytest.raises(ValueError, match="ruin_rule"):
        Ruin(a, share=1.0, after=0.0, size=0.3, peak=1.0, rule="greedy", bias=1.0)


@pytest.mark.parametrize("budget", [1, 2, 63, 65, 130, 997, 3000])
def test_every_decode_counted_once_and_every_schedule_valid_with_the_option_on(
    budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recreated proposals are decoded like any other: the rows handed to the decoder add up to the
    count, which stops exactly at the budget, and every decoded schedule passes the checker."""
    p = read_psplib(J120)
    decoded = 0
    decode = annealing_mod.directions.decode
    bad: list[str] = []

    def spy(order, modes, a, *, backward, parallel=None):  # type: ignore[no-untyped-def]
        nonlocal decoded
        decoded += order.shape[0]
        start = decode(order, modes, a, backward=backward, parallel=parallel)
        for st, md in zip(start, modes, strict=True):
            bad.extend(check_schedule(p, [int(x) for x in st], [int(x) for x in md]))
        return start

    monkeypatch.setattr(annealing_mod.directions, "decode", spy)
    algo = QuantumAnnealing(RUIN)
    algo.setup(p, MaxSchedules(budget), seed=2)
    while algo.has_next():
        algo.next()
    r = algo.result()
    assert r.schedules_evaluated == decoded == budget
    assert bad == []
    assert r.schedule is not None and check_schedule(p, r.schedule.starts, r.schedule.modes) == []


def test_the_default_search_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off by default: no ``Ruin`` is built, and a search with the option on but not yet due (its
    progress never reached) draws and decodes exactly the default's schedules."""
    p = read_psplib(J120)

    def runs(settings: AnnealingSettings) -> tuple[list[np.ndarray], int]:
        algo = QuantumAnnealing(settings)
        algo.setup(p, MaxSchedules(1500), seed=3)
        seen = []
        while algo.has_next():
            algo.next()
            seen.append(algo.start.copy())
        return seen, int(algo.result().schedule.makespan)  # type: ignore[union-attr]

    base, base_ms = runs(replace(RUIN, ruin_from=2.0))

    class Refused:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("built with the option off")

    monkeypatch.setattr(annealing_mod, "Ruin", Refused)
    default, default_ms = runs(AnnealingSettings())
    assert default_ms == base_ms and len(default) == len(base)
    assert all(np.array_equal(x, y) for x, y in zip(default, base, strict=True))


def test_on_it_changes_the_search_and_multi_mode_never_uses_it() -> None:
    p = read_psplib(J120)
    algo = QuantumAnnealing(RUIN)
    algo.setup(p, MaxSchedules(1500), seed=3)
    assert algo.ruin is not None
    mm = QuantumAnnealing(RUIN)
    mm.setup(read_psplib(PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm"), MaxSchedules(400), seed=1)
    assert mm.ruin is None
