"""Spend this process accepted and has not yet written to the store, kept exactly in pico-USD.

:class:`TrackingQueue` wraps the in-process queue: ``publish`` adds a request's spend to the
:class:`SpendLedger` (aggregated per request, before the records become visible to the writer),
``take`` closes the ledger's write gate for the batch, and ``commit`` (called by the batch writer
once the store has the rows) subtracts the batch's spend and opens the gate again. A reader that
holds the gate (:meth:`SpendLedger.read`) sees no write land while it reads the store and the
ledger, so store + ledger counts every accepted span exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_cost_tracker.queue.memory import MemoryQueue, Part
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.types import AttributeColumns, Batch, Records, SpanRecord

BUCKET_NS = 15 * 60 * 10**9
"""Pending spend is bucketed by span start time in 15 minutes: every period bound in every current
time zone (offsets are multiples of 15 minutes) falls on a bucket edge."""

Dims = tuple[str, str, str, str, tuple[str, ...]]
"""(tenant, service, provider, model, values of the budgets' attribute keys then of their entity keys)."""
Aggregate = dict[tuple[Dims, int], int]
"""(dims, 15-minute bucket) -> pico-USD."""
Layout = tuple[tuple[str, ...], tuple[str, ...]]
"""(attribute keys, entity keys): which values an aggregate's dims hold."""
T = TypeVar("T")


def _aggregate_scoped(records: Iterable[SpanRecord], keys: tuple[str, ...],
                      entity_keys: tuple[str, ...]) -> Aggregate:
    """:meth:`SpendLedger.aggregate` with budget attribute keys (``keys``) or entity keys."""
    out: Aggregate = {}
    blanks = ("",) * len(keys)
    for r in records:
        cost = r.cost_pusd
        if not cost:
            continue
        attrs = r.attributes
        values = tuple(map(attrs.get, keys, blanks))
        if entity_keys:
            resource = r.resource_attributes
            values += tuple([attrs.get(k) or resource.get(k, "") for k in entity_keys])
        key = ((r.tenant, r.service_name, r.provider, r.response_model or r.request_model, values),
               r.start_time_ns // BUCKET_NS)
        out[key] = out.get(key, 0) + cost
    return out


def _aggregate_table(records: SpanTable) -> Aggregate:
    """:meth:`SpendLedger.aggregate` of a table, without budget attribute or entity keys."""
    return {((tenant, service, provider, model, ()), bucket): cost
            for (tenant, service, provider, model, bucket), cost in records.cost_by(BUCKET_NS).items()}


class SpendLedger:
    """Signed pending spend per dimensions and time bucket, and the gate between writes and reads.

    Args:
        attribute_keys: the span attributes budgets are scoped by (their values are kept per entry).
        entity_keys: the attributes per-entity budgets count by (``each``): a span attribute, else the
            resource attribute of that name, as :func:`budgets._entities.entity_expression` reads the store.
    """

    def __init__(self, attribute_keys: Sequence[str] = (), entity_keys: Sequence[str] = ()) -> None:
        self._keys = (tuple(attribute_keys), tuple(entity_keys))
        """(attribute keys, entity keys), replaced as one (a reader never sees half a change)."""
        self._layouts: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        """Earlier (attribute keys, entity keys) by their total length, to re-shape old aggregates."""
        self._lock = threading.Lock()
        self._pending: Aggregate = {}
        self._gate = threading.Lock()
        """Held by the writer from take to commit, or by a reader around its store query."""
        self.writes = 0

    def aggregate(self, records: Iterable[SpanRecord] | SpanTable, layout: Layout | None = None) -> Aggregate:
        """The priced spend of ``records`` per (dims, bucket), with the keys of ``layout`` (default: the
        current ones, :attr:`layout`); no lock taken.

        Runs once per request, on the receiver's path, for every span: the common case (no budget scoped
        by an attribute) sums per flat key and builds the nested keys once per entry, not per span (a table's
        from its columns).
        """
        keys, entity_keys = self._keys if layout is None else layout
        if isinstance(records, SpanTable):
            if keys or entity_keys:  # (budgets scoped by attributes: their values are in the maps)
                return _aggregate_scoped(records.to_records(), keys, entity_keys)
            return _aggregate_table(records)
        if keys or entity_keys:
            return _aggregate_scoped(records, keys, entity_keys)
        flat: dict[tuple[str, str, str, str, int], int] = {}
        get = flat.get
        for r in records:
            cost = r.cost_pusd
            if cost:
                key = (r.tenant, r.service_name, r.provider, r.response_model or r.request_model,
                       r.start_time_ns // BUCKET_NS)
                flat[key] = get(key, 0) + cost
        return {((tenant, service, provider, model, ()), bucket): cost
                for (tenant, service, provider, model, bucket), cost in flat.items()}

    @property
    def layout(self) -> Layout:
        """The keys entries are aggregated with now (an aggregate made with them is re-shaped if keys are
        added before it is applied)."""
        return self._keys

    @property
    def attribute_keys(self) -> tuple[str, ...]:
        return self._keys[0]

    @property
    def entity_keys(self) -> tuple[str, ...]:
        return self._keys[1]

    def extend_keys(self, attribute_keys: Sequence[str], entity_keys: Sequence[str]) -> None:
        """Also keep the values of these keys (a budget added at run time); existing entries get "" for them.

        Keys are only ever added, so an entry's length tells which keys it was aggregated with: an
        aggregate computed with the old keys and applied after this call is re-shaped on the way in.
        """
        with self._lock:
            attrs = self.attribute_keys + tuple(k for k in attribute_keys if k not in self.attribute_keys)
            entities = self.entity_keys + tuple(k for k in entity_keys if k not in self.entity_keys)
            if (attrs, entities) == (self.attribute_keys, self.entity_keys):
                return
            self._layouts[len(self.attribute_keys) + len(self.entity_keys)] = (self.attribute_keys, self.entity_keys)
            self._keys = (attrs, entities)
            self._pending = {self._reshape(k): v for k, v in self._pending.items()}

    def _reshape(self, key: tuple[Dims, int]) -> tuple[Dims, int]:
        (tenant, service, provider, model, values), bucket = key
        attrs, entities = self._keys
        if len(values) == len(attrs) + len(entities):
            return key
        old_attrs, old_entities = self._layouts[len(values)]
        by_attr = dict(zip(old_attrs, values[:len(old_attrs)], strict=True))
        by_entity = dict(zip(old_entities, values[len(old_attrs):], strict=True))
        values = tuple(by_attr.get(k, "") for k in attrs) + tuple(by_entity.get(k, "") for k in entities)
        return (tenant, service, provider, model, values), bucket

    def _apply(self, agg: Mapping[tuple[Dims, int], int], sign: int) -> None:
        with self._lock:
            pending = self._pending
            if self._layouts:
                # an aggregate may mix layouts (a batch's requests, some aggregated before keys were added):
                # entries that re-shape to one key are summed, never one kept for the other
                reshaped: Aggregate = {}
                for key, value in agg.items():
                    key = self._reshape(key)
                    reshaped[key] = reshaped.get(key, 0) + value
                agg = reshaped
            for key, value in agg.items():
                total = pending.get(key, 0) + sign * value
                if total:
                    pending[key] = total
                else:
                    pending.pop(key, None)

    def add(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        self._apply(agg, 1)

    def subtract(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        self._apply(agg, -1)

    def begin_write(self) -> None:
        """A batch is about to be written (its rows may appear in the store from now on): waits for readers."""
        self._gate.acquire()

    def end_write(self, agg: Mapping[tuple[Dims, int], int]) -> None:
        """The batch is in the store (or parked): stop counting it as pending, let readers in."""
        try:
            self._apply(agg, -1)
            self.writes += 1
        finally:
            self._gate.release()

    @property
    def writing(self) -> bool:
        return self._gate.locked()

    def snapshot(self) -> Aggregate:
        """A copy of the pending spend."""
        with self._lock:
            return dict(self._pending)

    def read(self, query: Callable[[], T], timeout: float = 2.0) -> tuple[T, Aggregate, bool]:
        """Run the store ``query`` with no write landing meanwhile: (its result, pending spend, exact).

        If a write holds the gate longer than ``timeout`` (a failing store being retried), the read goes
        ahead and is an upper bound (``exact`` False): the pending spend is copied before the query,
        so a batch landing during it may be counted twice but no accepted span is missed.
        """
        exact = self._gate.acquire(timeout=timeout)
        try:
            pending = self.snapshot()
            return query(), pending, exact
        finally:
            if exact:
                self._gate.release()


@dataclass(frozen=True, slots=True)
class _Published:
    """What :meth:`TrackingQueue.publish` added for one request, and the keys it was aggregated with."""

    aggregate: Aggregate
    layout: Layout


def _records(records: Records) -> list[SpanRecord] | SpanTable:
    """``records`` in a form :meth:`SpendLedger.aggregate` reads (a wire-form batch, Kafka's, decoded)."""
    return records if isinstance(records, (list, SpanTable)) else records.to_records()


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
        self._carries = isinstance(inner, MemoryQueue)
        """The inner queue hands each request's aggregate back with its batch (saves aggregating twice)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def publish(self, records: list[SpanRecord] | SpanTable, wire_bytes: int | None = None,
                columns: AttributeColumns | None = None) -> Future[None]:
        layout = self.ledger.layout
        agg = self.ledger.aggregate(records, layout)
        if agg:
            self.ledger.add(agg)  # before the writer can see the records: never briefly uncounted
        try:
            if self._carries:  # the aggregate travels with the records, for commit to take back out
                return self._inner.publish(records, wire_bytes, columns,  # type: ignore[no-any-return]
                                           carry=_Published(agg, layout))
            return self._inner.publish(records, wire_bytes, columns)  # type: ignore[no-any-return]
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
        agg = self._published(batch)
        try:
            self._inner.commit(batch)
        finally:
            self.ledger.end_write(agg)

    def _published(self, batch: Batch) -> Aggregate:
        """What ``publish`` added to the ledger for ``batch``'s records.

        The in-process queue hands each request's aggregate back (:meth:`MemoryQueue.carried`): the same
        entries publish added, so commit takes out exactly those (re-shaped by the ledger if budget keys were
        added meanwhile). A part of a request split across batches carries the whole request's (a
        :class:`~llm_cost_tracker.queue.memory.Part`) and is aggregated again with the keys the request was
        aggregated with, so its entries are those publish added too, whatever keys were added since. A
        batch of any other queue is aggregated again (a wire-form batch, Kafka's, is decoded to be counted).
        """
        if not self._carries:
            return self.ledger.aggregate(_records(batch.records))
        total: Aggregate = {}
        start = 0
        records: list[SpanRecord] | SpanTable | None = None  # built only for a request that carried no aggregate
        for count, carried in MemoryQueue.carried(batch):
            if isinstance(carried, _Published):
                agg = carried.aggregate
            else:
                whole = carried.whole if isinstance(carried, Part) else None
                layout = whole.layout if isinstance(whole, _Published) else None
                if records is None:
                    records = batch.records if isinstance(batch.records, (list, SpanTable)) else _records(batch.records)
                agg = self.ledger.aggregate(records.slice(start, count) if isinstance(records, SpanTable)
                                            else records[start:start + count], layout)
            start += count
            for key, value in agg.items():  # the ledger re-shapes and sums these when it applies them
                total[key] = total.get(key, 0) + value
        return total
