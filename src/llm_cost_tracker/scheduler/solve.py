"""Entry points: run an algorithm to termination, and solve a batch through the breaker.

A worker keeps one :class:`Scheduler` (one breaker) and calls :meth:`Scheduler.solve_batch` per
batch; the optimizer runs in a thread so an overrun can be cut off and answered greedily.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from llm_cost_tracker.scheduler import metrics
from llm_cost_tracker.scheduler.annealing import QuantumAnnealing
from llm_cost_tracker.scheduler.batch import TaskBatch
from llm_cost_tracker.scheduler.breaker import CircuitBreaker
from llm_cost_tracker.scheduler.errors import InfeasibleError
from llm_cost_tracker.scheduler.greedy import greedy_schedule
from llm_cost_tracker.scheduler.problem import Problem
from llm_cost_tracker.scheduler.result import ScheduleResult
from llm_cost_tracker.scheduler.search_settings import AnnealingSettings
from llm_cost_tracker.scheduler.termination import (
    Cancelled,
    MaxSchedules,
    TerminateIfAny,
    Termination,
    TimeLimit,
)


class Algorithm(Protocol):
    """The pymoo-style lifecycle every optimizer offers."""

    def setup(self, problem: Problem, termination: Termination, seed: int | None = None) -> None: ...

    def has_next(self) -> bool: ...

    def next(self) -> None: ...

    def result(self) -> ScheduleResult: ...


FAST_PLACEMENTS = 610_000
"""A placement cap that leaves every benchmark set whole (5,000 schedules of a 122-activity j120
instance) and plans a 1,000-job batch in 4-5 s of CPU (610 schedules)."""


@dataclass(frozen=True, slots=True)
class SolveSettings:
    """Budget of one solve; whichever of schedules or seconds runs out first ends the search."""

    max_schedules: int | None = 5000
    time_limit: float | None = 30.0
    seed: int | None = None
    grace: float = 0.5
    """Seconds past ``time_limit`` after which the optimizer counts as overrunning."""
    max_placements: int | None = None
    """Most activity placements (decoded schedules x activities) one solve may spend, so a large
    batch gets proportionally fewer schedules: ``max_placements // n`` when that is below
    ``max_schedules`` (never fewer than one population of replicas). Every decoded schedule places
    all n activities, so the CPU time of a search grows with schedules x n. Off by default: a shorter
    search picks a dearer plan (a 1,000-job batch capped at 610,000 placements, 610 schedules, plans in
    4-5 s of CPU but its pick costs 22.5% more; docs/scheduler.md), and the service's time limit
    already bounds the wait. 610,000 is :data:`FAST_PLACEMENTS`, for a caller that wants speed."""
    annealing: AnnealingSettings = field(default_factory=AnnealingSettings)


def minimize(
    problem: Problem, algorithm: Algorithm, termination: Termination, seed: int | None = None
) -> ScheduleResult:
    """Run ``algorithm`` on ``problem`` until ``termination`` fires (no breaker, no fallback)."""
    algorithm.setup(problem, termination, seed)
    while algorithm.has_next():
        algorithm.next()
    return algorithm.result()


def schedule_budget(settings: SolveSettings, n: int) -> int | None:
    """Schedules a solve of ``n`` activities may decode: ``max_schedules``, cut by ``max_placements``."""
    if settings.max_schedules is None or settings.max_placements is None:
        return settings.max_schedules
    floor = min(settings.max_schedules, settings.annealing.replicas)
    return min(settings.max_schedules, max(floor, settings.max_placements // max(n, 1)))


def termination_for(
    settings: SolveSettings, cancel: threading.Event | None = None, n: int | None = None
) -> Termination:
    """The combined stopping rule of a settings object (for a problem of ``n`` activities, if given)."""
    members: list[Termination] = []
    budget = settings.max_schedules if n is None else schedule_budget(settings, n)
    if budget is not None:
        members.append(MaxSchedules(budget))
    if settings.time_limit is not None:
        members.append(TimeLimit(settings.time_limit))
    if cancel is not None:
        members.append(Cancelled(cancel))
    if not members:
        raise ValueError("a solve needs max_schedules or time_limit")
    return TerminateIfAny(*members)


def optimize(
    problem: Problem, settings: SolveSettings, cancel: threading.Event | None = None
) -> ScheduleResult:
    """Annealing with the settings' budget; raises :class:`InfeasibleError` when proven infeasible."""
    stop = termination_for(settings, cancel, problem.n)
    return minimize(problem, QuantumAnnealing(settings.annealing), stop, settings.seed)


class Scheduler:
    """Optimizer behind a circuit breaker, with the greedy serial SGS as fallback."""

    def __init__(self, breaker: CircuitBreaker | None = None, settings: SolveSettings | None = None) -> None:
        self.breaker = breaker or CircuitBreaker()
        self.settings = settings or SolveSettings()

    def solve(self, problem: Problem, settings: SolveSettings | None = None) -> ScheduleResult:
        """Best schedule within the budget, or the greedy one if the optimizer fails or overruns.

        Raises:
            InfeasibleError: the instance provably has no feasible schedule.
        """
        s = settings or self.settings
        t0 = time.perf_counter()
        try:
            if not self.breaker.allow():
                return self._fallback(problem, "breaker_open")
            outcome: dict[str, ScheduleResult | BaseException] = {}
            cancel = threading.Event()

            def run() -> None:
                try:
                    outcome["result"] = optimize(problem, s, cancel)
                except BaseException as exc:  # reported to the caller's thread below
                    outcome["error"] = exc

            worker = threading.Thread(target=run, name="scheduler-optimize", daemon=True)
            worker.start()
            worker.join(None if s.time_limit is None else s.time_limit + s.grace)
            if worker.is_alive():
                cancel.set()
                self.breaker.record_failure()
                return self._fallback(problem, "timeout")
            error = outcome.get("error")
            if isinstance(error, InfeasibleError):
                self.breaker.record_success()
                metrics.SOLVES.labels("infeasible").inc()
                raise error
            if error is not None:
                self.breaker.record_failure()
                return self._fallback(problem, "error")
            result = outcome["result"]
            assert isinstance(result, ScheduleResult)
            self.breaker.record_success()
            metrics.SCHEDULES.inc(result.schedules_evaluated)
            metrics.SOLVES.labels("optimized" if result.success else "failed").inc()
            return result
        finally:
            metrics.SOLVE_SECONDS.observe(time.perf_counter() - t0)

    def solve_batch(self, batch: TaskBatch, settings: SolveSettings | None = None) -> ScheduleResult:
        """Solve an LLM task batch (the call a worker makes per message)."""
        return self.solve(batch.problem, settings)

    def _fallback(self, problem: Problem, reason: str) -> ScheduleResult:
        metrics.FALLBACKS.labels(reason).inc()
        metrics.SOLVES.labels("fallback").inc()
        return greedy_schedule(problem, reason)


_DEFAULT: Scheduler | None = None
_DEFAULT_LOCK = threading.Lock()


def solve_batch(batch: TaskBatch, settings: SolveSettings | None = None) -> ScheduleResult:
    """Solve a batch through the process-wide scheduler (one shared breaker)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Scheduler()
    return _DEFAULT.solve_batch(batch, settings)
