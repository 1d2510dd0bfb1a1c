"""Per-tenant token buckets for spans/s and bytes/s: over the rate, the caller is told when to retry."""

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
        """Seconds until ``amount`` would fit (a request bigger than the burst waits for a full bucket)."""
        need = min(amount, self.capacity) - self.level
        return max(need, 0.0) / self.rate


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

    def admit(self, policy: TenantPolicy, spans: int, size: int) -> float:
        """0.0 when admitted (and charged), else the seconds to wait before retrying."""
        wanted = [(kind, rate, amount) for kind, rate, amount in
                  (("spans", policy.spans_per_second, spans), ("bytes", policy.bytes_per_second, size))
                  if rate > 0]
        if not wanted:
            return 0.0
        with self._lock:
            now = self._clock()
            buckets = []
            wait = 0.0
            for kind, rate, amount in wanted:
                bucket = self._bucket(policy, kind, rate, now)
                bucket.refill(now)
                buckets.append((bucket, amount))
                if bucket.level < min(amount, bucket.capacity):
                    wait = max(wait, bucket.wait_for(amount))
            if wait > 0:
                return wait
            for bucket, amount in buckets:
                bucket.level -= amount  # may go negative for a request over the burst: it is paid back later
            return 0.0
