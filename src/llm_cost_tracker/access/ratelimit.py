"""Per-tenant token buckets for spans/s and bytes/s: over the rate, the caller is told when to retry.

A bucket holds at most ``rate * burst_seconds``; a request is admitted only when the whole request fits
in what the bucket holds now, and the level never goes below zero. A request bigger than the burst can
never fit: it is refused for good (:class:`OverBurst`), not let through on credit (a 20,000-span
request through a 2,000-span burst would be ten bursts at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from llm_cost_tracker.access.tokens import TenantPolicy


class _Bucket:
    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, rate: float, burst_seconds: float, now: float) -> None:
        self.rate = rate
        self.capacity = rate * burst_seconds
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` (at most the capacity) would fit."""
        return max(amount - self.level, 0.0) / self.rate


class OverBurst(ValueError):
    """A request is bigger than its tenant's burst: it can never be admitted (send smaller batches)."""


class RateLimiter:
    """Admits a request of ``spans`` and ``size`` bytes for a tenant, or says how long to wait.

    Both buckets must have room; nothing is taken from either unless both do.

    Args:
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _bucket(self, policy: TenantPolicy, kind: str, rate: float, now: float) -> _Bucket:
        key = (policy.name, kind)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key] = _Bucket(rate, policy.burst_seconds, now)
        return bucket

    def admit(self, policy: TenantPolicy, spans: int | None, size: int, charge: bool = True) -> float:
        """0.0 when admitted (and charged), else the seconds to wait before retrying.

        Args:
            spans: spans in the request; None checks the bytes alone (before the request is parsed).
            charge: take the request from the buckets when admitted (False: only look).

        Raises:
            OverBurst: the request is bigger than a bucket can ever hold.
        """
        wanted: list[tuple[str, float, int]] = []
        for kind, rate, amount in (("spans", policy.spans_per_second, spans), ("bytes", policy.bytes_per_second, size)):
            if rate > 0 and amount is not None:
                wanted.append((kind, rate, amount))
        if not wanted:
            return 0.0
        with self._lock:
            now = self._clock()
            buckets = []
            wait = 0.0
            for kind, rate, amount in wanted:
                bucket = self._bucket(policy, kind, rate, now)
                if amount > bucket.capacity:
                    raise OverBurst(
                        f"request of {amount} {kind} is over the burst of {bucket.capacity:g} {kind} of tenant "
                        f"{policy.name!r} ({kind}_per_second x burst_seconds); send smaller batches "
                        "(collector: send_batch_max_size)")
                bucket.refill(now)
                buckets.append((bucket, amount))
                if bucket.level < amount:
                    wait = max(wait, bucket.wait_for(amount))
            if wait > 0 or not charge:
                return wait
            for bucket, amount in buckets:
                bucket.level -= amount  # never below zero: the request fitted
            return 0.0
