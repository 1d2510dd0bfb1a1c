"""The receiver side of the Kafka queue: publish each request's records, ack once the broker has them all.

``KafkaPublisher.publish`` is called from grpc handler threads. It encodes the records there,
counts them against ``kafka_max_in_flight_records`` (over it: :class:`QueueBusy`, answered
RESOURCE_EXHAUSTED with a RetryInfo), groups them by partition (Kafka's murmur2 of the trace id, so
a trace stays on one partition) and makes one Kafka message per (request, partition): a
``SpanRecordBatchV1`` with the ``lct-batch`` header (split at ``_MAX_MESSAGE_BYTES``). Kafka's
per-message costs (framing, the consumer's record parsing, offsets) are thus paid per ~100 spans,
not per span. The producer's event-loop thread appends the messages to one open record batch per
partition, so many small requests share produce requests; the future returned to the handler
completes when every batch holding one of its messages is acknowledged with ``acks=all``, or fails
with :class:`QueueUnavailable` when one is not.

Memory is bounded by the in-flight limit whatever the broker does. While the brokers are
unreachable, ``publish`` fails fast with :class:`QueueUnavailable` (UNAVAILABLE) and a probe checks
every second whether they are back (re-creating the topic if the broker lost it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from llm_cost_tracker.config import KafkaConfig
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.queue import kafka_attributes, kafka_codec
from llm_cost_tracker.queue.kafka_client import (
    IdempotenceRefused,
    LoopThread,
    client_options,
    compression_type,
    ensure_topics,
    partitions_for_keys,
    start_producer,
)
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.types import AttributeColumns, QueueBusy, QueueUnavailable, SpanRecord

log = get_logger("kafka_producer")
_PROBE_SECONDS = 1.0
_MAX_MESSAGE_BYTES = 256 * 1024
"""A request's records for one partition are split into messages of at most this many value bytes
(uncompressed; a single larger record is a message of its own), well under brokers' 1 MB limit."""


@dataclass(eq=False, slots=True)
class _Ack:
    """One publish call: completes when its last batch is acknowledged."""

    future: Future[None]
    records: int
    pending: int = 0


@dataclass(eq=False, slots=True)
class _OpenBatch:
    builder: Any
    acks: list[_Ack] = field(default_factory=list)
    records: int = 0


class KafkaPublisher:
    """Publisher over an aiokafka producer (``acks=all``), for the OTLP handler.

    Args:
        config: the Kafka section (``settings.kafka``), validated.
        metrics: Kafka metrics to update.
    """

    def __init__(self, config: KafkaConfig, metrics: KafkaMetrics) -> None:
        self._s = config
        self._metrics = metrics
        self.topic = config.kafka_topic
        self._compression = compression_type(config)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False
        self.healthy = False
        self.down_reason = "not connected to Kafka yet"
        self.refusal: IdempotenceRefused | None = None
        """Set when the brokers refused the idempotent producer: a setting to change, not an outage."""
        self._loop = LoopThread("kafka-producer")
        self._producer: Any = None
        self._partitions = 0
        self._open: dict[int, deque[_OpenBatch]] = {}
        self._wakeups: dict[int, asyncio.Event] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}
        self._probe: asyncio.Task[None] | None = None
        metrics.broker_up.set(0)
        metrics.in_flight.set_function(lambda: self._in_flight)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start(self, wait_seconds: float = 10.0) -> bool:
        """Start the producer; returns whether the brokers answered within ``wait_seconds``.

        If they did not, the publisher still runs: it answers UNAVAILABLE and keeps probing.
        """
        threading.Thread(target=kafka_attributes.warm_up, name="kafka-encode-warm-up", daemon=True).start()
        self._loop.call(self._start())
        deadline = time.monotonic() + wait_seconds
        while not self.healthy and self.refusal is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.healthy

    async def _start(self) -> None:
        self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    def _new_producer(self) -> Any:
        s = self._s
        return AIOKafkaProducer(
            **client_options(s), acks="all", enable_idempotence=s.kafka_idempotence,
            compression_type=self._compression, linger_ms=s.kafka_linger_ms,
            max_batch_size=s.kafka_max_batch_bytes, max_request_size=max(s.kafka_max_batch_bytes, 1_048_576),
        )

    # --- broker health -------------------------------------------------------------------------

    def _mark_down(self, reason: str) -> None:
        if self.healthy:
            log.warning("Kafka unavailable; answering UNAVAILABLE until it is back", reason=reason[:300])
        self.healthy = False
        self.down_reason = reason
        self._metrics.broker_up.set(0)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    async def _probe_loop(self) -> None:
        """Until the brokers answer (and the topic exists): retry, once a second."""
        while not self._closed:
            try:
                if self._producer is None:
                    producer = self._new_producer()
                    await start_producer(producer, self._s)
                    self._producer = producer
                created = await ensure_topics(self._s, [self.topic])
                if created:
                    log.info("created topic", topics=created, partitions=self._s.kafka_partitions)
                await self._producer.client.force_metadata_update()
                partitions = self._producer.client.cluster.partitions_for_topic(self.topic)
                if not partitions:
                    raise KafkaError(f"topic {self.topic} has no partitions in the cluster metadata")
                self._partitions = len(partitions)
                if not self.healthy:
                    log.info("Kafka reachable", topic=self.topic, partitions=self._partitions)
                self.healthy = True
                self.down_reason = ""
                self.refusal = None
                self._metrics.broker_up.set(1)
                return
            except IdempotenceRefused as exc:  # a setting to change: say so (once) in the words of the fix
                if self.refusal is None:
                    log.error(str(exc))
                self.refusal = exc
                self.down_reason = str(exc)
                self.healthy = False
                self._metrics.broker_up.set(0)
            except Exception as exc:  # connection refused, timeouts, auth: all mean "not now"
                self.down_reason = f"{type(exc).__name__}: {exc}"
                self.healthy = False
                self._metrics.broker_up.set(0)
            await asyncio.sleep(_PROBE_SECONDS)

    # --- publish (handler threads) -------------------------------------------------------------

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None,
                columns: AttributeColumns | None = None) -> Future[None]:
        """``wire_bytes`` is not needed: the in-flight bound counts records. The ``columns`` (the wire scan's) let
        the records' attribute maps be written from the request's pools instead of each record's dict."""
        future: Future[None] = Future()
        n = len(records)
        if not n:
            future.set_result(None)
            return future
        if self._closed:
            raise QueueUnavailable("shutting down")
        if not self.healthy:
            raise QueueUnavailable(f"Kafka unavailable: {self.down_reason}")
        limit = self._s.kafka_max_in_flight_records
        with self._lock:
            if self._in_flight and self._in_flight + n > limit:
                self._metrics.busy.inc()
                raise QueueBusy(f"{self._in_flight} of {limit} records in flight to Kafka",
                                retry_after_seconds=1.0)
            self._in_flight += n
        try:
            partitions = self._partitions
            messages = self._messages(records, partitions, columns)
        except Exception:
            self._release(n)
            raise
        ack = _Ack(future, n)
        self._loop.loop.call_soon_threadsafe(self._append, ack, partitions, messages)
        return future

    @staticmethod
    def _messages(records: list[SpanRecord], partitions: int,
                  columns: AttributeColumns | None = None) -> list[tuple[int, int, bytes]]:
        """(partition, record count, SpanRecordBatchV1 value) per message of this request.

        The records are encoded together (with the request's attribute ``columns``, see
        ``kafka_codec.encode_many``), then grouped by partition in request order."""
        keys = [r.trace_id.encode() for r in records]
        groups: dict[int, list[bytes]] = {}
        for value, partition in zip(kafka_codec.encode_many(records, columns),
                                    partitions_for_keys(keys, partitions).tolist(), strict=True):
            group = groups.get(partition)
            if group is None:
                groups[partition] = [value]
            else:
                group.append(value)
        out: list[tuple[int, int, bytes]] = []
        for partition, group in groups.items():
            values: list[bytes] = []
            size = 0
            for value in group:
                if values and size + len(value) > _MAX_MESSAGE_BYTES:
                    out.append((partition, len(values), kafka_codec.encode_batch(values)))
                    values, size = [], 0
                values.append(value)
                size += len(value) + 4
            out.append((partition, len(values), kafka_codec.encode_batch(values)))
        return out

    def _release(self, n: int) -> None:
        with self._lock:
            self._in_flight -= n

    # --- the loop thread: batching and delivery --------------------------------------------------

    def _append(self, ack: _Ack, partitions: int, messages: list[tuple[int, int, bytes]]) -> None:
        if not self.healthy or not self._partitions or partitions > self._partitions:
            self._fail([ack], QueueUnavailable(f"Kafka unavailable: {self.down_reason or 'partitions changed'}"))
            return
        for partition, count, value in messages:
            headers = kafka_codec.batch_headers(count)
            batches = self._open.get(partition)
            if batches is None:
                batches = self._open[partition] = deque()
                self._wakeups[partition] = asyncio.Event()
                self._flushers[partition] = asyncio.get_running_loop().create_task(self._flush_loop(partition))
            batch = batches[-1] if batches else None
            if batch is None or batch.builder.append(key=None, value=value, timestamp=None, headers=headers) is None:
                batch = _OpenBatch(self._producer.create_batch())
                batches.append(batch)
                batch.builder.append(key=None, value=value, timestamp=None, headers=headers)
            batch.records += count
            if not batch.acks or batch.acks[-1] is not ack:
                batch.acks.append(ack)
                ack.pending += 1
            self._wakeups[partition].set()

    async def _flush_loop(self, partition: int) -> None:
        """Hand this partition's batches to the producer, oldest first, one queued at a time."""
        batches = self._open[partition]
        wakeup = self._wakeups[partition]
        while not (self._closed and not batches):
            if not batches:
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = batches.popleft()
            try:
                delivered = await self._producer.send_batch(batch.builder, self.topic, partition=partition)
            except Exception as exc:
                self._on_failure(batch, exc)
                continue
            delivered.add_done_callback(lambda f, b=batch: self._on_delivered(b, f))

    def _on_delivered(self, batch: _OpenBatch, delivered: asyncio.Future[Any]) -> None:
        exc = delivered.exception() if not delivered.cancelled() else asyncio.CancelledError()
        if exc is not None:
            self._on_failure(batch, exc)
            return
        self._metrics.produced.inc(batch.records)
        for ack in batch.acks:
            ack.pending -= 1
            if ack.pending == 0 and not ack.future.done():
                self._release(ack.records)
                ack.future.set_result(None)

    def _on_failure(self, batch: _OpenBatch, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        self._metrics.produce_errors.labels(error=type(exc).__name__).inc(batch.records)
        log.warning("batch not acknowledged", records=batch.records, error=reason[:300])
        if isinstance(exc, KafkaTimeoutError | asyncio.TimeoutError | OSError) or (
                isinstance(exc, KafkaError) and exc.retriable):
            self._mark_down(reason)  # the brokers, not the records: stop taking more until they answer
        self._fail(batch.acks, QueueUnavailable(f"Kafka did not acknowledge: {reason}"))

    def _fail(self, acks: list[_Ack], exc: Exception) -> None:
        for ack in acks:
            if not ack.future.done():
                self._release(ack.records)
                ack.future.set_exception(exc)

    # --- shutdown ------------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new records, deliver (or fail) those accepted, stop the producer and the loop."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            for event in self._wakeups.values():
                event.set()
            flushers = list(self._flushers.values())
            if flushers:
                await asyncio.wait(flushers, timeout=timeout)
            if self._probe is not None:
                self._probe.cancel()
            if self._producer is None:
                return
            try:
                await asyncio.wait_for(self._producer.stop(), timeout)
            except Exception as exc:
                log.warning("producer did not stop cleanly", error=str(exc)[:300])

        try:
            self._loop.call(shutdown(), timeout + 5)
        except Exception as exc:
            log.warning("producer shutdown incomplete", error=str(exc)[:300])
        self._loop.stop()
