"""When to stop: termination criteria as objects that report progress in [0, 1].

Kept apart from the algorithm (as in pymoo) so the annealing schedule can follow whichever budget
binds first, and a worker can add a cancel flag without touching the search.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    """What a criterion may look at: the algorithm's counters."""

    @property
    def schedules_evaluated(self) -> int: ...

    @property
    def started_at(self) -> float: ...


class Termination(Protocol):
    """A stopping rule; ``progress`` reaches 1.0 exactly when the run must stop."""

    def progress(self, algo: Progress) -> float: ...

    def remaining_schedules(self, algo: Progress) -> int | None: ...


class MaxSchedules:
    """Stop after a number of decoded schedules (the literature's budget unit)."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("max schedules must be positive")
        self.limit = limit

    def progress(self, algo: Progress) -> float:
        return min(1.0, algo.schedules_evaluated / self.limit)

    def remaining_schedules(self, algo: Progress) -> int | None:
        return max(0, self.limit - algo.schedules_evaluated)


class TimeLimit:
    """Stop after wall-clock seconds since the run started."""

    __slots__ = ("seconds", "clock")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if seconds <= 0:
            raise ValueError("time limit must be positive")
        self.seconds = seconds
        self.clock = clock

    def progress(self, algo: Progress) -> float:
        return min(1.0, (self.clock() - algo.started_at) / self.seconds)

    def remaining_schedules(self, algo: Progress) -> int | None:
        return None


class Cancelled:
    """Stop as soon as an event is set (a worker cancelling an overrunning solve)."""

    __slots__ = ("event",)

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def progress(self, algo: Progress) -> float:
        return 1.0 if self.event.is_set() else 0.0

    def remaining_schedules(self, algo: Progress) -> int | None:
        return None


class TerminateIfAny:
    """Stop when any member stops; progress is the furthest member's."""

    __slots__ = ("members",)

    def __init__(self, *members: Termination) -> None:
        self.members = members

    def progress(self, algo: Progress) -> float:
        return max((m.progress(algo) for m in self.members), default=0.0)

    def remaining_schedules(self, algo: Progress) -> int | None:
        left = [r for m in self.members if (r := m.remaining_schedules(algo)) is not None]
        return min(left) if left else None
