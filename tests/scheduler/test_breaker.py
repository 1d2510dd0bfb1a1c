"""Circuit breaker states and the greedy fallback around the optimizer."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from llm_cost_tracker.scheduler import (
    BreakerState,
    CircuitBreaker,
    Scheduler,
    SolveSettings,
    check_schedule,
    greedy_schedule,
    read_psplib,
)
from llm_cost_tracker.scheduler import solve as solve_mod
from tests.scheduler.conftest import TESTDATA


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("llm_cost_scheduler_fallbacks_total", {"reason": reason}) or 0.0


def test_breaker_opens_after_threshold_and_half_opens_after_wait() -> None:
    """Closed -> open after N failures -> half-open after the wait -> closed on a successful trial."""
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_after=10, clock=clock)
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    assert REGISTRY.get_sample_value("llm_cost_scheduler_breaker_state") == 1
    clock.now = 10
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow() and not b.allow()  # one trial only
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()
    assert REGISTRY.get_sample_value("llm_cost_scheduler_breaker_state") == 0


def test_failed_half_open_trial_reopens_at_once() -> None:
    """A failure during the half-open trial re-opens the breaker and restarts the wait."""
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_after=5, clock=clock)
    for _ in range(3):
        b.record_failure()
    clock.now = 5
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now = 9
    assert b.state is BreakerState.OPEN
    clock.now = 10
    assert b.state is BreakerState.HALF_OPEN


def test_optimizer_error_falls_back_to_feasible_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in the optimizer yields the greedy schedule, a counted fallback and a failure."""
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("optimizer bug")

    monkeypatch.setattr(solve_mod, "optimize", boom)
    p = read_psplib(TESTDATA / "small.sm")
    sched = Scheduler(CircuitBreaker(failure_threshold=2, reset_after=60))
    before = _fallbacks("error")
    r = sched.solve(p)
    assert r.fallback == "error" and r.algorithm == "greedy" and r.success
    assert check_schedule(p, r.schedule.starts, r.schedule.modes) == []  # type: ignore[union-attr]
    assert _fallbacks("error") == before + 1
    sched.solve(p)
    assert sched.breaker.state is BreakerState.OPEN
    before_open = _fallbacks("breaker_open")
    assert sched.solve(p).fallback == "breaker_open"
    assert _fallbacks("breaker_open") == before_open + 1


@pytest.mark.serial  # the answer is timed
def test_overrun_is_cut_off_and_answered_greedily(monkeypatch: pytest.MonkeyPatch) -> None:
    """An optimizer that overruns its time limit plus grace is abandoned for the greedy schedule."""
    def slow(problem, settings, cancel):  # type: ignore[no-untyped-def]
        cancel.wait(5)
        raise RuntimeError("cancelled")

    monkeypatch.setattr(solve_mod, "optimize", slow)
    p = read_psplib(TESTDATA / "small.sm")
    sched = Scheduler(CircuitBreaker(failure_threshold=1, reset_after=60))
    t0 = time.perf_counter()
    r = sched.solve(p, SolveSettings(max_schedules=None, time_limit=0.1, grace=0.1))
    assert time.perf_counter() - t0 < 2.0
    assert r.fallback == "timeout" and sched.breaker.state is BreakerState.OPEN


def test_successful_solve_keeps_breaker_closed() -> None:
    """A normal solve returns the optimizer's result and leaves the breaker closed."""
    p = read_psplib(TESTDATA / "small.sm")
    sched = Scheduler(CircuitBreaker(failure_threshold=1))
    r = sched.solve(p, SolveSettings(max_schedules=300, time_limit=20, seed=1))
    assert r.fallback == "" and r.algorithm == "sqa" and sched.breaker.state is BreakerState.CLOSED


def test_greedy_is_feasible_on_multimode() -> None:
    """The greedy fallback respects renewable and non-renewable capacities."""
    p = read_psplib(TESTDATA / "tiny.mm")
    r = greedy_schedule(p, "test")
    assert r.schedule is not None and check_schedule(p, r.schedule.starts, r.schedule.modes) == []
