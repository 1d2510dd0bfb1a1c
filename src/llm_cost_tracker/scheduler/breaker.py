"""Circuit breaker (closed, open, half-open) around the optimizer.

After ``failure_threshold`` consecutive failures the breaker opens and every batch goes straight to
the greedy fallback; after ``reset_after`` seconds one trial batch is let through (half-open), and
its outcome closes or re-opens the breaker. State changes are published as a metric.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

from llm_cost_tracker.scheduler import metrics


class BreakerState(Enum):
    """Breaker states, valued as exported by the ``breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Counts consecutive optimizer failures and decides whether the next batch may use it."""

    __slots__ = ("failure_threshold", "reset_after", "_clock", "_lock", "_state", "_failures",
                 "_opened_at", "_trial_running")

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_after < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_after >= 0")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        metrics.BREAKER_STATE.set(self._state.value)

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose wait is over reports half-open."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after:
                self._set(BreakerState.HALF_OPEN)
            return self._state

    def allow(self) -> bool:
        """Whether this call may run the optimizer (half-open lets exactly one trial through)."""
        state = self.state
        with self._lock:
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        """The optimizer answered in time: close the breaker and forget past failures."""
        with self._lock:
            self._failures = 0
            self._trial_running = False
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """The optimizer errored or overran: open after the threshold, or at once if half-open."""
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        metrics.BREAKER_STATE.set(state.value)
