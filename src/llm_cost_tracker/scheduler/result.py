"""What a solve returns: the chosen schedule, the Pareto front and honest bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Schedule:
    """One feasible plan: start time and 0-based mode index of every activity, plus its objectives."""

    starts: tuple[int, ...]
    modes: tuple[int, ...]
    makespan: int
    cost: int
    tardiness: float

    @property
    def objectives(self) -> tuple[float, float, float]:
        """(makespan, total cost, weighted tardiness), all minimised."""
        return (float(self.makespan), float(self.cost), self.tardiness)


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """Outcome of one solve.

    ``success`` is False with a reason in ``message`` when no feasible schedule was found;
    ``fallback`` names why the greedy fallback produced it instead of the optimizer ("" if not).
    """

    success: bool
    message: str
    schedule: Schedule | None
    front: tuple[Schedule, ...]
    hypervolume: float
    schedules_evaluated: int
    seconds: float
    algorithm: str
    fallback: str = ""
    infeasible: bool = False
    """True only when infeasibility is proven, not merely when the search found nothing."""
