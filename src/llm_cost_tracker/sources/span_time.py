"""Span start times the store can hold, checked when an Export is received.

A span the tables cannot keep must be rejected in ``partial_success``, not answered OK and lost:
one dated before the retention horizon is deleted by the raw table's TTL while the daily rollup
(kept forever) counts it, and one past 2106-02-07 06:28:15 UTC overflows the ``DateTime`` the
rollups bucket by and the TTL is computed on (a span dated 2200 lands in a 1970s hour). So a span is
accepted when its start time is

- not before ``now - retention`` (the shortest non-zero of ``ttl_raw_days``, ``ttl_hourly_days``
  and ``ttl_daily_days``: every table that counts it still holds it),
- not after ``now + max_future_span_seconds`` (clock skew; a span from next year is a producer bug),
- and not after :data:`LATEST_NS`.

Pure: the clock is an argument, the rejections go into the :class:`DecodedBatch` with a reason and a
message that names the bound, never the span's content.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from llm_cost_tracker.config import DecodeConfig, StoreConfig
from llm_cost_tracker.sources.otlp_decode import DecodedBatch

__all__ = ["BEFORE_RETENTION", "IN_FUTURE", "LATEST_NS", "OUT_OF_RANGE", "SpanTimeBounds"]

DAY_NS = 86_400 * 10**9
LATEST_NS = (2**32 - 1) * 10**9
"""2106-02-07 06:28:15 UTC: the last second a ClickHouse ``DateTime`` (rollup hour, TTL) represents."""
BEFORE_RETENTION = "timestamp_before_retention"
IN_FUTURE = "timestamp_in_future"
OUT_OF_RANGE = "timestamp_out_of_range"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SpanTimeBounds:
    """Moves the spans of a decoded request whose start time the store cannot hold into its rejections.

    Args:
        retention_days: the shortest non-zero retention of the tables (0: kept forever).
        max_future_seconds: how far past ``clock()`` a start time may be.
        clock: nanoseconds since the epoch (``time.time_ns``; tests pass their own).
    """

    __slots__ = ("_clock", "_future_ns", "_retention_ns")

    def __init__(self, retention_days: int, max_future_seconds: int, clock: Callable[[], int] = time.time_ns) -> None:
        self._retention_ns = retention_days * DAY_NS
        self._future_ns = max_future_seconds * 10**9
        self._clock = clock

    @classmethod
    def from_config(cls, decode: DecodeConfig, store: StoreConfig) -> SpanTimeBounds:
        """Bounds from the decode section (``max_future_span_seconds``) and the store's shortest retention."""
        days = (store.ttl_raw_days, store.ttl_hourly_days, store.ttl_daily_days)
        return cls(min((d for d in days if d > 0), default=0), decode.max_future_span_seconds)

    def bounds(self) -> tuple[int, int]:
        """[earliest, latest] start time accepted now, in ns."""
        now = self._clock()
        earliest = now - self._retention_ns if self._retention_ns else 0
        return max(earliest, 0), min(now + self._future_ns, LATEST_NS)

    def __call__(self, batch: DecodedBatch) -> None:
        earliest, latest = self.bounds()
        records = batch.records
        if all(earliest <= r.start_time_ns <= latest for r in records):
            return
        kept = []
        counts = {BEFORE_RETENTION: 0, IN_FUTURE: 0, OUT_OF_RANGE: 0}
        for r in records:
            start = r.start_time_ns
            if start < earliest:
                counts[BEFORE_RETENTION] += 1
            elif start > LATEST_NS or (start > latest and latest == LATEST_NS):
                counts[OUT_OF_RANGE] += 1
            elif start > latest:
                counts[IN_FUTURE] += 1
            else:
                kept.append(r)
        batch.records = kept
        texts = {
            BEFORE_RETENTION: f"start before the retention horizon {_iso(earliest)} (the store would delete them)",
            IN_FUTURE: f"start more than {self._future_ns // 10**9} s ahead of the receiver's clock",
            OUT_OF_RANGE: f"start after {_iso(LATEST_NS)}, the latest the store can hold",
        }
        for reason, n in counts.items():
            if n:  # one message per reason, whatever the count (the per-span messages are capped at 5)
                batch.rejected[reason] = batch.rejected.get(reason, 0) + n
                batch.messages.append(f"{n} span(s) rejected ({reason}): {texts[reason]}")
