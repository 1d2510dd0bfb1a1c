"""What the gRPC source lets in before it spends memory or a thread on a request.

Two bounds, both decided before any byte of a request is parsed:

- :class:`MemoryBudget`: requests being decoded hold an estimate of what decoding them costs
  (:func:`decode_cost`, a multiple of the message size measured for the worst shapes the limits
  allow); a request that would take the total past the budget waits, and past its wait is answered
  RESOURCE_EXHAUSTED with a retry delay. Six 13 MiB requests no longer decode at once.
- :class:`ReceiveWatchdog`: a stream that sent its headers must send its message within
  ``receive_timeout`` seconds or it is cancelled, so a client that never sends holds a thread for
  seconds, not until its deadline (or forever without one).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from llm_cost_tracker.log import get_logger

__all__ = ["DECODE_BYTES_PER_MESSAGE_BYTE", "MemoryBudget", "ReceiveWatchdog", "decode_cost"]
log = get_logger("admission")

DECODE_BYTES_PER_MESSAGE_BYTE = 16
"""Peak memory of parse + decode + transforms per byte of message, for the worst shape within the
default limits (spans of 15 one-byte attributes: measured 11.2; spans of only the usage attributes
8.9; 60 KB prompt values 1.8), plus the message itself and a margin (docs/hardening.md)."""


def decode_cost(message_bytes: int) -> int:
    """Estimated peak bytes of decoding a message of ``message_bytes`` (never less than 64 KiB)."""
    return max(message_bytes * DECODE_BYTES_PER_MESSAGE_BYTE, 64 * 1024)


class MemoryBudget:
    """A counting semaphore in bytes: at most ``capacity`` bytes held at once.

    A single request over the whole capacity is let in alone (so the limits, not the budget, decide
    what is too big), which keeps the bound at max(capacity, one request).

    Args:
        capacity: bytes that may be held at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.waiting = 0
        self._cond = threading.Condition()

    def acquire(self, cost: int, timeout: float) -> bool:
        """Take ``cost`` bytes, waiting up to ``timeout`` seconds; False when they did not become free."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self.waiting += 1
            try:
                while self.in_use and self.in_use + cost > self.capacity:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self.in_use += cost
                return True
            finally:
                self.waiting -= 1

    def release(self, cost: int) -> None:
        with self._cond:
            self.in_use -= cost
            self._cond.notify_all()


class ReceiveWatchdog:
    """Calls each armed ``cancel`` when its deadline passes, unless disarmed first; one thread for all."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, Callable[[], object]] = {}
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self.fired = 0
        self._thread = threading.Thread(target=self._run, name="grpc-receive-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float, cancel: Callable[[], object]) -> int:
        with self._cond:
            token = next(self._ids)
            self._armed[token] = cancel
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            self._cond.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, token = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                cancel = self._armed.pop(token, None)
            if cancel is not None:
                self.fired += 1
                try:
                    cancel()
                except Exception as exc:  # the call ended meanwhile
                    log.debug("cancelling a stalled stream failed", error=type(exc).__name__)
