"""Proposals that would repeat a decode are shifted again before decoding (fresh.py, issue 20)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from llm_cost_tracker.scheduler import AnnealingSettings, MaxSchedules, QuantumAnnealing, check_schedule, read_psplib
from llm_cost_tracker.scheduler import annealing as annealing_mod
from llm_cost_tracker.scheduler.fresh import DecodedLists
from llm_cost_tracker.scheduler.operators import positions, sample_lists
from llm_cost_tracker.scheduler.problem import compile_problem
from tests.scheduler.conftest import TESTDATA

J120 = TESTDATA / "public" / "psplib" / "j120" / "j1207_1.sm"


def test_known_and_repeated_lists_are_shifted_into_new_feasible_ones() -> None:
    """A list recorded in a direction, or equal to an earlier row, is flagged; ``renew`` shifts the
    flagged rows until they are new and precedence-feasible, leaves the others alone, and a list
    recorded backward is not known forward."""
    a = compile_problem(read_psplib(J120))
    rng = np.random.default_rng(5)
    known = sample_lists(4, a, rng, np.full(4, 1.0))
    lists = DecodedLists(a.n)
    lists.add(known[:2], backward=False)
    order = np.concatenate([known, known[2:3]])  # rows 0, 1 known; row 4 repeats row 2
    assert lists.repeats(order, backward=False).tolist() == [True, True, False, False, True]
    assert not lists.repeats(order[:2], backward=True).any()
    new, left = lists.renew(order, a, rng, backward=False, tries=5)
    assert left == 0 and not lists.repeats(new, backward=False).any()
    assert np.array_equal(new[2:4], order[2:4])
    pos = positions(new)
    for act in range(a.n):
        for s in a.succ_pad[act]:
            if s < a.n:
                assert (pos[:, act] < pos[:, s]).all()


def _serial_repeats(monkeypatch: pytest.MonkeyPatch, fresh: int) -> tuple[int, int]:
    """Serial decodes of a list already decoded in the same direction over a 3,000-schedule run."""
    seen: dict[bool, set[bytes]] = {False: set(), True: set()}
    count = [0, 0]
    decode = annealing_mod.directions.decode

    def spy(o: np.ndarray, m: np.ndarray, a: Any, *, backward: bool, parallel: Any = None) -> np.ndarray:
        for i, row in enumerate(o):
            if parallel is None or not parallel[i]:
                key = row.tobytes()
                count[0] += key in seen[backward]
                count[1] += 1
                seen[backward].add(key)
        out: np.ndarray = decode(o, m, a, backward=backward, parallel=parallel)
        return out

    monkeypatch.setattr(annealing_mod.directions, "decode", spy)
    p = read_psplib(J120)
    algo = QuantumAnnealing(AnnealingSettings(fresh=fresh))
    algo.setup(p, MaxSchedules(3000), seed=1)
    while algo.has_next():
        algo.next()
    r = algo.result()
    assert r.schedules_evaluated == 3000 and r.schedule is not None
    assert check_schedule(p, r.schedule.starts, r.schedule.modes) == []
    return count[0], count[1]


def test_fresh_lists_spend_the_budget_on_lists_not_decoded_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the check some serial decodes repeat a list; with it (3 tries) almost none do, and
    the budget is still spent exactly."""
    repeats_off, serial_off = _serial_repeats(monkeypatch, 0)
    repeats_on, serial_on = _serial_repeats(monkeypatch, 3)
    assert serial_off > 1000 and serial_on > 1000
    assert repeats_off > 20
    assert repeats_on <= repeats_off // 10
