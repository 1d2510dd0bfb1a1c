"""The sink loop: take size/age batches from a queue, write them, commit only after the write.

Only first arrivals are written and counted: before its first write attempt a batch is filtered
against what the store already holds (``FirstArrivals``, sinks/identity.py), and the spend metrics
(``llm_cost_usd_total`` and the token and unpriced counters) are counted here, after the store took
the rows, from the same filtered records, so a retried or redelivered span counts once everywhere.
The filtered batch is kept across retries and written with one insert deduplication token, so an
attempt that stored the rows and then failed is completed, not repeated, by the next one.

A retriable failure is retried with capped exponential backoff for as long as the service runs
(the queue fills meanwhile and the receiver answers UNAVAILABLE, so collectors hold the data). A
permanent failure, or a retriable one still failing when shutdown's deadline passes, parks the
batch on disk. Either way the batch is accounted for: written, or parked, never dropped.

When parking fails too (the data disk is read-only or full, and so is every fallback directory),
the writer keeps trying, write then park, until shutdown's deadline; past it the batch is counted
in :attr:`BatchWriter.lost` (and not committed), so the service can exit non-zero with the exact
count instead of reporting a clean stop.

A write that never returns (a blocked insert) holds the writer past shutdown's deadline with the
spans queued behind its batch never tried: :meth:`BatchWriter.park_queued` lets the stopping thread
park those, so only the batch inside the hung write is lost.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from llm_cost_tracker.config import BatchConfig
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.types import AttributeColumns, Batch, BatchReader, Records

log = get_logger("sink")


class Sink(Protocol):
    """Where batches are written (``ClickHouseSink``): one insert per call, a repeat of the same non-empty
    ``dedup_token`` a no-op."""

    def write(self, records: Records, dedup_token: str = "", columns: Sequence[AttributeColumns] = ()) -> None:
        """``columns``: the batch's attribute columns (``Batch.columns``), which a sink may build attribute
        maps from."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedParking:
    """What :meth:`BatchWriter.park_queued` did with the records still queued when the writer was stuck."""

    parked: int
    """Records parked, then committed (their ``--ack stored`` clients answered)."""
    unparked: int
    """Records no parking directory took: left uncommitted, so the queue's depth still counts them as lost."""


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_records: int = 20_000
    max_age_seconds: float = 1.0
    retry_initial_seconds: float = 0.1
    retry_max_seconds: float = 30.0

    @classmethod
    def from_config(cls, config: BatchConfig) -> BatchPolicy:
        """The policy of the ``batch_*`` and ``sink_retry_max_seconds`` settings (``settings.batch``)."""
        return cls(config.batch_size, config.batch_age_seconds, retry_max_seconds=config.sink_retry_max_seconds)


class BatchWriter:
    """Runs the take -> write -> commit loop in its own thread until the reader is closed and drained.

    Args:
        reader: the queue's sink side.
        sink: where batches are written.
        parking: where batches the sink refuses go.
        is_retriable: the sink's verdict on an error.
        policy: batch size/age and retry backoff.
        metrics: counters to update.
        first_arrivals: filters a batch to the spans the store does not hold yet (or holds from an earlier
            attempt under the batch's token), returning them and how many were left out
            (``sinks.identity.FirstArrivals``); None writes every record.
        on_stored: called with each batch's first arrivals after their insert (forwarding: a span goes on
            once, as stored); it may wait (backpressure), and its failures are logged, never the batch's.
    """

    def __init__(self, reader: BatchReader, sink: Sink, parking: ParkingLot,
                 is_retriable: Callable[[BaseException], bool], policy: BatchPolicy, metrics: Metrics,
                 first_arrivals: Callable[[Records, str], tuple[Records, int]] | None = None,
                 on_stored: Callable[[Records], None] | None = None) -> None:
        self._first_arrivals = first_arrivals
        self._on_stored = on_stored
        self._reader = reader
        self._sink = sink
        self._parking = parking
        self._is_retriable = is_retriable
        self._policy = policy
        self._metrics = metrics
        self._give_up_at: float | None = None
        self._handed_over = threading.Event()
        """Set by :meth:`park_queued`: what is queued is the stopping thread's, the writer takes no more."""
        self._lost_lock = threading.Lock()  # lost is counted by the writer and by park_queued's thread
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self.healthy = True
        """False while the last write attempt failed (drives /readyz)."""
        self.lost = 0
        """Records that could be neither written nor parked before the shutdown deadline."""

    def start(self) -> None:
        self._thread.start()

    def give_up_after(self, seconds: float) -> None:
        """Stop retrying failing writes ``seconds`` from now (shutdown): park instead."""
        self._give_up_at = time.monotonic() + seconds

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def park_queued(self, reason: str, reader: BatchReader | None = None) -> QueuedParking:
        """Park what is still queued, from the stopping thread, while this writer is stuck in a store write
        past shutdown's deadline (a hung insert): the spans behind its batch were accepted and would
        otherwise be lost with it. Call it only once the queue is closed (``take`` would wait for more).

        Each batch is parked, then committed, as the writer does with a batch the store refused, so an
        ``--ack stored`` client gets its answer; a batch no parking directory takes stays uncommitted (the
        queue's depth keeps counting it) and is added to :attr:`lost`. The batch inside the stuck write is
        not touched: it is the writer's, written if that write returns, lost if it never does. From here on
        the writer takes no new batch, so a writer that comes back during the drain commits its batch and
        stops; ``take`` is locked, so a batch it took just before is its own (in flight), never both's.

        Args:
            reason: recorded with each parked record (``_error``).
            reader: the queue to drain, by default the writer's. The all-in-one service passes its queue
                without the budgets' tracking wrapper, whose ``take`` waits for the spend ledger's write
                gate, which the stuck writer's batch holds until committed: through it this would hang.
        """
        self._handed_over.set()
        source = self._reader if reader is None else reader
        parked = unparked = 0
        while (batch := source.take(self._policy.max_records, 0.0)) is not None:
            rows = len(batch.records)
            try:
                path = self._parking.park(batch.records, reason)
            except Exception as exc:
                unparked += rows
                log.error("queued batch LOST: the writer is stuck and no parking directory took the batch",
                          rows=rows, lost_total=self._count_lost(rows), parking_error=str(exc)[:500])
                continue
            source.commit(batch)
            parked += rows
            log.error("queued batch parked: the writer is stuck in a store write", rows=rows, path=str(path))
        return QueuedParking(parked, unparked)

    def _count_lost(self, rows: int) -> int:
        """Add ``rows`` to :attr:`lost`; the new total."""
        with self._lost_lock:
            self.lost += rows
            return self.lost

    def _run(self) -> None:
        policy = self._policy
        while not self._handed_over.is_set():
            batch = self._reader.take(policy.max_records, policy.max_age_seconds)
            if batch is None:
                return
            try:
                kept = self._write(batch)
            except Exception as exc:  # a bug: count the batch, never die with its records unaccounted
                log.exception("batch writer failed", rows=len(batch.records), error=type(exc).__name__)
                kept = False
                self._count_lost(len(batch.records))
            if kept:
                self._reader.commit(batch)

    def _giving_up(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _write(self, batch: Batch) -> bool:
        """Write or park ``batch``; False when neither worked by the shutdown deadline (counted as lost)."""
        delay = self._policy.retry_initial_seconds
        records: Records | None = None  # the batch's first arrivals, decided once (before the first attempt)
        repeats = 0
        token = batch.dedup_token or f"lct-batch:{uuid.uuid4().hex}"  # the same for every attempt of this batch
        while True:
            started = time.perf_counter()
            try:
                if records is None:
                    if self._first_arrivals is None:
                        records = batch.records
                    else:
                        records, repeats = self._first_arrivals(batch.records, token)
                if len(records):
                    self._sink.write(records, token, columns=batch.columns)
            except Exception as exc:
                retriable = self._is_retriable(exc)
                self.healthy = False
                self._metrics.sink_errors.labels(retriable=str(retriable).lower()).inc()
                giving_up = self._giving_up()
                if not retriable or giving_up:
                    unstored = batch.records if records is None else records  # copies already stored are not
                    try:
                        path = self._parking.park(unstored, f"{type(exc).__name__}: {exc}")
                    except Exception as park_exc:
                        if self._giving_up():
                            lost = self._count_lost(len(unstored))
                            log.error("batch LOST: neither written nor parked before the shutdown deadline",
                                      rows=len(batch.records), lost_total=lost, error=str(exc)[:300],
                                      parking_error=str(park_exc)[:500])
                            return False
                        log.error("batch could not be parked; retrying until it is written or parked",
                                  rows=len(batch.records), error=str(park_exc)[:500], retry_in=round(delay, 3))
                    else:
                        log.error("batch parked", rows=len(batch.records), path=str(path), error=str(exc)[:500],
                                  retriable=retriable)
                        return True
                log.warning("batch write failed, retrying", rows=len(batch.records), error=str(exc)[:300],
                            retry_in=round(delay, 3))
                if self._give_up_at is not None:
                    delay = max(0.0, min(delay, self._give_up_at - time.monotonic()))
                time.sleep(delay)
                delay = min(delay * 2, self._policy.retry_max_seconds)
                continue
            self.healthy = True
            self._metrics.batch_seconds.observe(time.perf_counter() - started)
            self._metrics.rows_written.inc(len(records))
            self._metrics.batches_written.inc()
            if repeats:
                self._metrics.spans_deduplicated.inc(repeats)
                log.info("spans already stored were not written again", repeats=repeats, rows=len(records))
            if isinstance(records, list):  # the in-process queue's SpanRecords: summed without a row per span
                self._metrics.spend.observe_records(records)
            elif isinstance(records, SpanTable) and (groups := records.spend_groups()) is not None:
                self._metrics.spend.observe_groups(groups)  # the columnar path's rows, summed in their columns
            else:  # wire records (Kafka) read their spend rows when they were validated
                self._metrics.spend.observe_rows(records.spend_rows())
            if self._on_stored is not None and len(records):
                self._stored(records)
            return True

    def _stored(self, records: Records) -> None:
        """The ``on_stored`` hook (after the insert and the metrics): the batch stays written whatever it does."""
        assert self._on_stored is not None
        try:
            self._on_stored(records)
        except Exception as exc:
            log.exception("after-insert hook failed", rows=len(records), error=type(exc).__name__)
