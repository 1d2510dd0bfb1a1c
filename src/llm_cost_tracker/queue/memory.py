"""The in-process queue of the all-in-one service: bounded in records and in bytes, with size/age batching on take."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from llm_cost_tracker.config import QueueConfig
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.types import AttributeColumns, Batch, QueueFull, SpanRecord

__all__ = ["RECORD_BYTES", "STRING_BYTES", "MemoryQueue", "Part", "record_bytes", "wire_record_bytes"]
RECORD_BYTES = 1200
"""Python memory of a SpanRecord without its attributes (slots, ids, names, usage), rounded up."""
STRING_BYTES = 200
"""Per attribute: two str objects and a dict slot, on top of the characters."""


def _dict_bytes(attrs: dict[str, str]) -> int:
    return STRING_BYTES * len(attrs) + sum(map(len, attrs)) + sum(map(len, attrs.values()))


def record_bytes(records: list[SpanRecord]) -> int:
    """Estimated memory the records hold (4.6 KB estimated vs 4.2 KB measured per span of 15 tiny attributes).

    The spans of one resource share its attribute dict (decode and redaction keep it shared): it is
    measured once per request and counted for every span, as if each held its own copy (an upper bound).
    """
    total = 0
    last: dict[str, str] | None = None
    last_bytes = 0
    for r in records:
        resource = r.resource_attributes
        if resource is not last:
            last, last_bytes = resource, _dict_bytes(resource)
        total += RECORD_BYTES + len(r.span_name) + len(r.service_name) + _dict_bytes(r.attributes) + last_bytes
    return total


_attributes = attrgetter("attributes")
_resource = attrgetter("resource_attributes")


def wire_record_bytes(records: list[SpanRecord], wire_bytes: int) -> int:
    """:func:`record_bytes` of records decoded from a request of ``wire_bytes`` bytes, without reading a string.

    The characters of every id, name, key and value came from the request, which held each of them in at
    least as many bytes as a ``str`` of ASCII holds characters (JSON escapes and varint numbers aside: the
    ``STRING_BYTES`` of each entry covers an int's digits), and a resource's entries once, where
    :func:`record_bytes` counts them for every span. So the request's size stands for the characters,
    and only the entries are counted, in C: ~0.1 us per span instead of ~1.1 (one ``len`` per string).
    """
    entries = sum(map(len, map(_attributes, records))) + sum(map(len, map(_resource, records)))
    return RECORD_BYTES * len(records) + STRING_BYTES * entries + wire_bytes


@dataclass(frozen=True, slots=True)
class Part:
    """What each part of a request written in several batches carries (:meth:`MemoryQueue.carried`): the whole
    request's carry, which describes more records than the part holds (the spend ledger aggregates the part
    again, the way it aggregated the request)."""

    whole: Any


def _part(carry: Any) -> Any:
    return carry if carry is None or isinstance(carry, Part) else Part(carry)


class _Ack:
    """A request's acknowledgement, completed when every part of its chunk is committed."""

    __slots__ = ("future", "parts")

    def __init__(self, future: Future[None]) -> None:
        self.future = future
        self.parts = 1

    def part_committed(self) -> bool:
        """True when that was the last part (the caller completes the future, outside its lock)."""
        self.parts -= 1
        return self.parts == 0


def _batch(parts: list[tuple[list[SpanRecord] | SpanTable, AttributeColumns | None]], handle: Any) -> Batch:
    """The batch of the chunks ``parts``: their records in one list (with the columns of those that have them),
    or one table when a chunk is a table."""
    if any(isinstance(chunk, SpanTable) for chunk, _ in parts):
        table = SpanTable.concat([chunk if isinstance(chunk, SpanTable) else (chunk, columns)
                                  for chunk, columns in parts])
        return Batch(records=table, handle=handle)
    records: list[SpanRecord] = []
    columns: list[AttributeColumns] = []
    for chunk, chunk_columns in parts:
        assert not isinstance(chunk, SpanTable)
        records.extend(chunk)
        if chunk_columns is not None:
            columns.append(chunk_columns)
    return Batch(records=records, handle=handle, columns=columns)


class MemoryQueue:
    """A bounded queue of per-request chunks, counted in records and in estimated bytes.

    A chunk is a request's SpanRecords, or the Arrow table of a request the columnar path decided
    (:class:`~llm_cost_tracker.storage.table.SpanTable`, counted by its buffers' bytes). A batch of record
    chunks only is a list of records, as before; a batch holding a table is one table, the record chunks'
    rows built into it (``SpanTable.concat``, outside the queue's lock).

    ``publish`` never blocks: when the queue is full it raises :class:`QueueFull` (the receiver
    answers UNAVAILABLE, and the collector's retry holds the data). With ``ack_when_stored`` the
    returned future completes only after the sink has committed the batch holding the chunk.

    Args:
        capacity: maximum records held (accepted and not yet committed).
        ack_when_stored: complete publish futures at commit instead of at enqueue.
        max_bytes: maximum estimated bytes held (:func:`record_bytes`); one chunk is always let in
            when the queue is empty. A batch holds at most 2/5 of it (:attr:`batch_bytes`).
    """

    @classmethod
    def from_config(cls, config: QueueConfig) -> MemoryQueue:
        """The queue of the ``queue_*`` and ``ack`` settings (``settings.queue``)."""
        return cls(config.queue_capacity, ack_when_stored=config.ack == "stored", max_bytes=config.queue_max_bytes)

    def __init__(self, capacity: int, ack_when_stored: bool = False, max_bytes: int = 1 << 62) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        """Estimated bytes of the records accepted and not yet committed."""
        self.batch_bytes = max_bytes * 2 // 5
        """Estimated bytes a batch takes at most (whole chunks; a chunk alone may be more): a batch in flight and
        the next one gathering fit the byte bound together, with room to spare. ``batch_size`` bounds a batch of
        tables (~1 KB a span), this one a batch of records (~5.4 KB a span estimated, ~19,000 in 2/5 of the
        default bound): 40,000 records in one batch hold most of the bound, and clients were asked to retry
        while it was written (82 retries in ``benchmarks/ingest.py``'s 300,000 spans; 3 at half the bound)."""
        self._queued_bytes = 0
        self._ack_when_stored = ack_when_stored
        self._chunks: deque[tuple[float, list[SpanRecord] | SpanTable, _Ack, int, AttributeColumns | None, Any]] = (
            deque())
        self._queued = 0
        self._in_flight = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def depth(self) -> int:
        """Records accepted and not yet committed by the sink."""
        return self._queued + self._in_flight

    accepts_tables = True
    """``publish`` takes a :class:`~llm_cost_tracker.storage.table.SpanTable` too (the columnar path's output)."""

    def publish(self, records: list[SpanRecord] | SpanTable, wire_bytes: int | None = None,
                columns: AttributeColumns | None = None, carry: Any = None) -> Future[None]:
        """``carry``: a value handed back with the batch that holds these records (:meth:`carried`), so that
        what a wrapper worked out per request (the spend ledger's aggregate) need not be worked out again
        per batch."""
        future: Future[None] = Future()
        if not records:
            future.set_result(None)
            return future
        if isinstance(records, SpanTable):
            size, columns = records.table.nbytes, None
        else:
            size = record_bytes(records) if wire_bytes is None else wire_record_bytes(records, wire_bytes)
            if columns is not None:
                columns = columns.held_by(records)  # not the dicts of spans left out, nor those redaction replaced
        with self._cond:
            if self._closed:
                raise QueueFull("queue is closed (shutting down)")
            if self._queued + self._in_flight + len(records) > self.capacity:
                raise QueueFull(f"queue full ({self.depth} of {self.capacity} records)")
            if self.bytes and self.bytes + size > self.max_bytes:
                raise QueueFull(f"queue full ({self.bytes >> 20} of {self.max_bytes >> 20} MiB)")
            self._chunks.append((time.monotonic(), records, _Ack(future), size, columns, carry))
            self._queued += len(records)
            self._queued_bytes += size
            self.bytes += size
            self._cond.notify()
        if not self._ack_when_stored:
            future.set_result(None)
        return future

    def close(self) -> None:
        """Refuse new records; ``take`` drains what is left, then returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, max_records: int, max_age_seconds: float) -> Batch | None:
        with self._cond:
            while True:
                if self._chunks:
                    age = time.monotonic() - self._chunks[0][0]
                    if (self._queued >= max_records or self._queued_bytes >= self.batch_bytes
                            or age >= max_age_seconds or self._closed):
                        break
                    self._cond.wait(max_age_seconds - age)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()
            parts: list[tuple[list[SpanRecord] | SpanTable, AttributeColumns | None]] = []
            acks: list[_Ack] = []
            carried: list[tuple[int, Any]] = []
            size = taken = 0
            while self._chunks and taken < max_records:
                born, chunk, ack, chunk_size, chunk_columns, carry = self._chunks.popleft()
                if taken and size + chunk_size > self.batch_bytes:
                    self._chunks.appendleft((born, chunk, ack, chunk_size, chunk_columns, carry))
                    break
                room = max_records - taken
                if len(chunk) > room:
                    if taken:  # whole chunks only, unless a chunk alone is bigger than a batch
                        self._chunks.appendleft((born, chunk, ack, chunk_size, chunk_columns, carry))
                        break
                    # one request bigger than a batch is written in batch-sized parts, so the writer's
                    # memory follows batch_size, not the largest request; it is acknowledged after the last.
                    # What it carries was the whole request's: each part carries it as a Part
                    # Each part keeps the columns' dicts of its own records only, so those of a part leave with
                    # it once written (the whole request's would wait for its last part: AttributeColumns.held_by)
                    part_size = chunk_size * room // len(chunk)
                    carry = _part(carry)
                    rest = chunk.slice(room) if isinstance(chunk, SpanTable) else chunk[room:]
                    self._chunks.appendleft((born, rest, ack, chunk_size - part_size,
                                             None if chunk_columns is None or isinstance(rest, SpanTable)
                                             else chunk_columns.held_by(rest), carry))
                    ack.parts += 1
                    chunk, chunk_size = (chunk.slice(0, room) if isinstance(chunk, SpanTable) else chunk[:room]), part_size
                    if chunk_columns is not None and not isinstance(chunk, SpanTable):
                        chunk_columns = chunk_columns.held_by(chunk)
                parts.append((chunk, chunk_columns))
                taken += len(chunk)
                acks.append(ack)
                carried.append((len(chunk), carry))
                size += chunk_size
            self._queued -= taken
            self._queued_bytes -= size
            self._in_flight += taken
        return _batch(parts, (acks, size, carried))

    @staticmethod
    def carried(batch: Batch) -> list[tuple[int, Any]]:
        """What each request of ``batch`` carried (``publish``), in order, with its number of records: the
        batch's records are these runs, one after the other. A part of a request split across batches
        carries :class:`Part` (the request's carry, describing the whole request); a request published
        without a carry, None."""
        carried: list[tuple[int, Any]] = batch.handle[2]
        return carried

    def commit(self, batch: Batch) -> None:
        acks, size, _ = batch.handle
        with self._cond:
            self._in_flight -= len(batch.records)
            self.bytes -= size
            done = [ack.future for ack in acks if ack.part_committed()]
        for future in done:
            if not future.done():
                future.set_result(None)
