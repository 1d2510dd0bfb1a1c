"""Spend this process accepted and has not yet written to the store, kept exactly in pico-USD.

:class:`TrackingQueue` wraps the in-process queue: ``publish`` adds a request's spend to the
:class:`SpendLedger` (aggregated per request, before the records become visible to the writer),
``take`` marks a write as started, and ``commit`` (called by the batch writer after the store has
the rows) subtracts the batch's spend and marks the write as finished. The ledger's sequence number
changes at each start and finish, so a reader can tell whether a write overlapped its store query
(see :meth:`BudgetService.refresh`): store + ledger is then exact, never counting a row twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from llm_cost_tracker.types import Batch, SpanRecord

BUCKET_NS = 15 * 60 * 10**9
"""Pending spend is bucketed by span start time in 15 minutes: every period bound in every current
time zone (offsets are multiples of 15 minutes) falls on a bucket edge."""

Dims = tuple[str, str, str, str, tuple[str, ...]]
"""(tenant, service, provider, model, values of the budgets' attribute keys)."""
Aggregate = dict[tuple[Dims, int], int]
"""(dims, 15-minute bucket) -> pico-USD."""


class SpendLedger:
    """Signed pending spend per dimensions and time bucket, plus a write sequence number.

    Args:
        attribute_keys: the span attributes budgets are scoped by (their values are kept per entry).
    """

    def __init__(self, attribute_keys: Sequence[str] = ()) -> None:
        self.attribute_keys = tuple(attribute_keys)
        self._lock = threading.Lock()
        self._pending: Aggregate = {}
        self._seq = 0
        self._writing = 0

    def aggregate(self, records: Iterable[SpanRecord]) -> Aggregate:
        """The priced spend of ``records`` per (dims, bucket); no lock taken."""
        out: Aggregate = {}
        keys = self.attribute_keys
        for r in records:
            cost = r.cost_pusd
            if not cost:
                continue
            attrs = tuple(r.attributes.get(k, "") for k in keys) if keys else ()
            key = ((r.tenant, r.service_name, r.provider, r.response_model or r.request_model, attrs),
                   r.start_time_ns // BUCKET_NS)
            out[key] = out.get(key, 0) + cost
        return out

    def _apply(self, agg: Mapping[tuple[Dims, int], int], sign: int) -> None:
        pending = self._pending
        for key, value in agg.items():
            total = pending.get(key, 0) + sign * value
            if total:
                pending[key] = total
            else:
                pending.pop(key, None)

    def add(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        with self._lock:
            self._apply(agg, 1)

    def subtract(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        with self._lock:
            self._apply(agg, -1)

    def begin_write(self) -> None:
        """A batch is about to be written: its rows may appear in the store from now on."""
        with self._lock:
            self._writing += 1
            self._seq += 1

    def end_write(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        """The batch is in the store (or parked): stop counting it as pending."""
        with self._lock:
            self._apply(agg, -1)
            self._writing -= 1
            self._seq += 1

    def state(self) -> tuple[int, bool]:
        """(sequence number, whether a write is in progress)."""
        with self._lock:
            return self._seq, self._writing > 0

    def snapshot(self) -> tuple[int, bool, Aggregate]:
        """(sequence number, write in progress, a copy of the pending spend)."""
        with self._lock:
            return self._seq, self._writing > 0, dict(self._pending)


class TrackingQueue:
    """A queue (publisher and batch reader) that keeps a :class:`SpendLedger` of what it holds.

    Everything else (``depth``, ``capacity``, ``close``...) is the wrapped queue's.

    Args:
        inner: the queue to wrap.
        ledger: where accepted and committed spend is recorded.
    """

    def __init__(self, inner: Any, ledger: SpendLedger) -> None:
        self._inner = inner
        self.ledger = ledger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def publish(self, records: list[SpanRecord]) -> Future[None]:
        agg = self.ledger.aggregate(records)
        if agg:
            self.ledger.add(agg)  # before the writer can see the records: never briefly uncounted
        try:
            return self._inner.publish(records)  # type: ignore[no-any-return]
        except BaseException:
            if agg:
                self.ledger.subtract(agg)
            raise

    def take(self, max_records: int, max_age_seconds: float) -> Batch | None:
        batch: Batch | None = self._inner.take(max_records, max_age_seconds)
        if batch is not None:
            self.ledger.begin_write()
        return batch

    def commit(self, batch: Batch) -> None:
        agg = self.ledger.aggregate(batch.records)
        try:
            self._inner.commit(batch)
        finally:
            self.ledger.end_write(agg)
