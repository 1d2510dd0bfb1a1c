"""The consumer side of the Kafka queue: a :class:`BatchReader` over an aiokafka consumer group.

Each batch is one partition's contiguous offset range, committed only after the sink stored it.
Redelivery (a crash between insert and commit, a rebalance) must produce *the same* batch, so that
its ``dedup_token`` (topic, partition, offset range and a hash of the values) makes the repeated
insert a no-op in ClickHouse. Batch boundaries are therefore a function of the log alone: starting
at the committed offset, a batch runs to the first *flush marker* (inclusive) or to the first message
that brings it to ``max_records`` span records (inclusive; counted from each message's ``lct-batch``
header, 1 for a plain SpanRecordV1), whichever comes first. When a partial batch reaches its age limit the reader writes a
flush marker to that partition itself; the marker is durable in the log, so whoever reads the
partition next cuts the batch at the same offset.

Messages that do not decode (a SpanRecordBatchV1 as a whole) go to the dead-letter topic (error in the ``lct-error`` header) before
the range is committed; the rest of the batch is stored as usual.

Committing a range's end commits every offset below it, so the reader takes a partition's messages only
without a hole (``kafka_offsets``): at a hole it seeks back and fetches again, and goes past one only when
the log itself has nothing there, counting and logging it (``llm_kafka_offset_gaps_total``). A hole at a
partition's end is found once its position reached the high watermark (checked every second).

All aiokafka work happens in the reader's event-loop thread; ``take``/``commit`` are called from the batch
writer's thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from llm_cost_tracker.config import KafkaConfig
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_client import LoopThread, client_options, compression_type, start_producer
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.queue.kafka_offsets import Admitted, PartitionOffsets
from llm_cost_tracker.sinks.parking import ParkingLot, default_fallbacks
from llm_cost_tracker.types import Batch, Records

log = get_logger("kafka_consumer")
_MARKER_RETRY_SECONDS = 1.0
"""A partial batch's marker is written again when it has not arrived this long after the last one (a write
that failed or was lost with a broker). A late marker that does land only closes a batch early (boundaries
are still read from the log)."""
_LAG_SECONDS = 1.0


def cut_index(messages: list[Any] | deque[Any], max_records: int) -> int | None:
    """How many of ``messages`` (from a batch start) form the next batch, or None if not decided yet.

    The batch ends at the first flush marker (inclusive) or at the first message that brings it to
    ``max_records`` span records (inclusive; a message's count comes from its headers): a function
    of the log only, so a redelivered range is cut exactly as before.
    """
    records = 0
    for i, message in enumerate(messages):
        if kafka_codec.is_marker(message.value, message.headers):
            return i + 1
        records += kafka_codec.record_count(message.headers)
        if records >= max_records:
            return i + 1
    return None


def dedup_token(topic: str, partition: int, messages: list[Any]) -> str:
    """Identifies a batch's content: equal for a redelivered range, different for different data."""
    digest = hashlib.sha256()  # with the CPU's SHA instructions ~2.5x blake2b's speed here (~0.5 us per span)
    for message in messages:
        digest.update(message.value or b"")
    return f"{topic}/{partition}/{messages[0].offset}-{messages[-1].offset}/{digest.hexdigest()[:16]}"


@dataclass(eq=False)
class _Partition:
    tp: TopicPartition
    generation: int
    messages: deque[Any] = field(default_factory=deque)
    first_arrival: float = 0.0
    next_offset: int = -1
    """Offset the next batch starts at (-1: whatever the consumer fetches first)."""
    in_flight: bool = False
    marker_sent_at: float | None = None
    """When the current partial batch's flush marker was last written (None: not asked for yet). Not a 0.0
    sentinel: ``time.monotonic()`` counts from boot, so on a machine up for less than the retry interval a
    0.0 "last sent" looked recent and the first marker was never written."""
    markers: int = 0
    """Flush markers among ``messages`` (a batch is complete once there is one, or enough records)."""
    records: int = 0
    """Span records in ``messages`` (per their ``lct-batch`` headers)."""
    offsets: PartitionOffsets = field(default_factory=PartitionOffsets)
    """What was handed over (no hole may be committed past)."""


@dataclass(frozen=True, slots=True)
class _Handle:
    tp: TopicPartition
    generation: int
    next_offset: int
    messages: int


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: KafkaBatchReader) -> None:
        self._reader = reader

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._reader._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._reader._assigned(set(assigned))


class KafkaBatchReader:
    """BatchReader over a consumer group on ``kafka_topic``.

    Args:
        config: the Kafka section (``settings.kafka``), validated.
        max_records: records per batch handed to the writer (``batch_size``).
        metrics: Kafka metrics to update.
    """

    def __init__(self, config: KafkaConfig, metrics: KafkaMetrics, max_records: int = 10_000) -> None:
        self._s = config
        self._metrics = metrics
        self.topic = config.kafka_topic
        self._cond = threading.Condition()
        self._parts: dict[TopicPartition, _Partition] = {}
        self._generation = 0
        self._buffered = 0
        self._closed = False
        self._loop = LoopThread("kafka-consumer")
        self._consumer: Any = None
        self._producer: Any = None
        self._fetcher: asyncio.Task[None] | None = None
        self._max_records = max_records
        self.fetch_error = ""
        self.last_fetch = 0.0
        metrics.buffered.set_function(lambda: self._buffered)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, join the group and start fetching (raises if the brokers cannot be reached)."""
        self._loop.call(self._start(), timeout=self._s.kafka_request_timeout_ms / 1000 + 30)

    async def _start(self) -> None:
        s = self._s
        options = client_options(s)
        self._producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=s.kafka_idempotence,
                                          compression_type=compression_type(s), linger_ms=0)
        await start_producer(self._producer, s)
        self._consumer = AIOKafkaConsumer(
            **options, group_id=s.kafka_group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=s.kafka_session_timeout_ms, heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
            max_poll_interval_ms=max(300_000, s.kafka_session_timeout_ms), fetch_max_wait_ms=100,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()
            await self._producer.stop()
            raise
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._fetcher = asyncio.get_running_loop().create_task(self._fetch_loop())

    def close(self) -> None:
        """Stop handing out batches: ``take`` returns None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        """Leave the group and close the clients (uncommitted ranges are redelivered elsewhere)."""
        self.close()

        async def shutdown() -> None:
            if self._fetcher is not None:
                self._fetcher.cancel()
            for client in (self._consumer, self._producer):
                if client is not None:
                    try:
                        await asyncio.wait_for(client.stop(), timeout)
                    except Exception as exc:
                        log.warning("Kafka client did not stop cleanly", error=str(exc)[:300])

        try:
            self._loop.call(shutdown(), timeout + 5)
        except Exception as exc:
            log.warning("consumer shutdown incomplete", error=str(exc)[:300])
        self._loop.stop()

    @property
    def assignment(self) -> list[TopicPartition]:
        with self._cond:
            return sorted(self._parts, key=lambda tp: tp.partition)

    # --- the loop thread: fetching, rebalances, lag ----------------------------------------------

    async def _fetch_loop(self) -> None:
        consumer = self._consumer
        limit = self._s.kafka_consumer_buffer_records
        next_lag = 0.0
        while True:
            try:
                data = await consumer.getmany(timeout_ms=100, max_records=5000)
                self.fetch_error = ""
                self.last_fetch = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.fetch_error = f"{type(exc).__name__}: {exc}"
                log.warning("fetch failed, retrying", error=self.fetch_error[:300])
                await asyncio.sleep(1.0)
                continue
            now = time.monotonic()
            if data:
                with self._cond:
                    for tp, messages in data.items():
                        self._metrics.consumed.labels(tp.topic, str(tp.partition)).inc(len(messages))
                        self._buffer(tp, messages, now)
                    self._cond.notify_all()
            self._flow_control(limit)
            if now >= next_lag:
                next_lag = now + _LAG_SECONDS
                self._update_lag()
                await self._tail_holes()

    def _flow_control(self, limit: int) -> None:
        """Bound memory: over ``limit`` buffered, pause the partitions that already hold a complete batch.

        A partition without one keeps fetching (at most ``max_records`` more) so that the flush marker
        or the message that completes its batch can arrive: pausing it could stall the reader.
        """
        consumer = self._consumer
        with self._cond:
            over = self._buffered >= limit
            relaxed = self._buffered < limit // 2
            complete = {tp for tp, p in self._parts.items() if p.markers or p.records >= self._max_records}
        paused = consumer.paused()
        to_pause = [tp for tp in complete if over and tp not in paused]
        to_resume = [tp for tp in paused if relaxed or tp not in complete]
        if to_pause:
            consumer.pause(*to_pause)
        if to_resume:
            consumer.resume(*to_resume)

    def _buffer(self, tp: TopicPartition, messages: list[Any], now: float) -> None:
        part = self._parts.get(tp)
        if part is None:
            return  # fetched before a revocation
        # up to its first hole, none handed over before (``kafka_offsets``): at a hole the fetch position is set
        # back to it, so the rest comes again after it
        fresh = self._holes(part, part.offsets.admit(messages)).messages
        if not fresh:
            return
        if not part.messages:
            part.first_arrival = now
        part.markers += sum(1 for m in fresh if not m.value and kafka_codec.is_marker(m.value, m.headers))
        records = sum(kafka_codec.record_count(m.headers) for m in fresh if m.value)
        part.records += records
        part.messages.extend(fresh)
        self._buffered += records

    def _holes(self, part: _Partition, admitted: Admitted) -> Admitted:
        """Act on the holes ``admitted`` found: fetch again from one; count and log those the log has."""
        for first, last in admitted.passed:
            self._metrics.offset_gaps.labels(outcome="skipped").inc()
            log.error("offsets missing from the log were passed: their spans, if any, are lost",
                      partition=part.tp.partition, first=first, last=last)
        if admitted.reread_from is not None:
            self._consumer.seek(part.tp, admitted.reread_from)  # what aiokafka holds past it is dropped
            self._metrics.offset_gaps.labels(outcome="reread").inc()
            log.warning("a fetch skipped offsets; reading them again", partition=part.tp.partition,
                        first=admitted.reread_from)
        return admitted

    async def _tail_holes(self) -> None:
        """A hole at a partition's end shows no later message: where the consumer's position reached the high
        watermark while what it was handed stops short of it, read the rest again (``admit_end``)."""
        consumer = self._consumer
        with self._cond:
            parts = list(self._parts.values())
        for part in parts:
            highwater = consumer.highwater(part.tp)
            if highwater is None or not 0 <= part.offsets.expected < highwater:
                continue
            try:  # known at once while fetching; bounded, so an offset reset in progress cannot hold the loop
                position = await asyncio.wait_for(consumer.position(part.tp), 0.5)
            except Exception:  # revoked meanwhile (its next owner reads from the committed offset), or resetting
                continue
            if position >= highwater:
                with self._cond:
                    if self._parts.get(part.tp) is part:
                        self._holes(part, part.offsets.admit_end(highwater))

    def _update_lag(self) -> None:
        consumer = self._consumer
        with self._cond:
            parts = [(tp, p.next_offset) for tp, p in self._parts.items()]
        for tp, committed in parts:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = committed if committed >= 0 else highwater
            self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        with self._cond:
            self._generation += 1
            for tp in assigned:
                self._parts[tp] = _Partition(tp, self._generation)
            self._cond.notify_all()
        self._metrics.rebalances.inc()
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        """Give an insert in progress a moment to commit, then forget the revoked partitions."""
        deadline = time.monotonic() + min(5.0, self._s.kafka_session_timeout_ms / 2000)
        while time.monotonic() < deadline:
            with self._cond:
                if not any(p.in_flight for tp, p in self._parts.items() if tp in revoked):
                    break
            await asyncio.sleep(0.05)
        with self._cond:
            for tp in revoked:
                part = self._parts.pop(tp, None)
                if part is not None:
                    self._buffered -= part.records
                    try:
                        self._metrics.lag.remove(tp.topic, str(tp.partition))
                    except KeyError:
                        pass
        if revoked:
            log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))

    async def _send_marker(self, tp: TopicPartition) -> None:
        try:
            await self._producer.send_and_wait(tp.topic, value=b"", partition=tp.partition,
                                               headers=kafka_codec.MARKER_HEADERS)
            self._metrics.markers.inc()
        except Exception as exc:
            log.warning("cannot write flush marker", partition=tp.partition, error=str(exc)[:300])

    async def _dead_letter(self, items: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
        futures = [await self._producer.send(self._s.kafka_dlq_topic, value=value or b"", key=key, headers=headers)
                   for key, value, headers in items]
        await asyncio.gather(*futures)

    # --- BatchReader (the writer's thread) ------------------------------------------------------

    def take(self, max_records: int, max_age_seconds: float) -> Batch | None:
        while True:
            picked = self._pick(max_records, max_age_seconds)
            if picked is None:
                return None
            part, messages = picked
            batch = self._build(part, messages)
            if batch is not None:
                return batch
            if self._closed:
                return None

    def _pick(self, max_records: int, max_age: float) -> tuple[_Partition, list[Any]] | None:
        self._max_records = max_records
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                ready: list[tuple[float, _Partition, int]] = []
                markers: list[TopicPartition] = []
                wait = max_age
                for part in self._parts.values():
                    if part.in_flight or not part.messages:
                        continue
                    n = cut_index(part.messages, max_records)
                    if n is not None:
                        ready.append((part.first_arrival, part, n))
                        continue
                    age = now - part.first_arrival
                    sent = part.marker_sent_at
                    if age >= max_age and (sent is None or now - sent >= _MARKER_RETRY_SECONDS):
                        part.marker_sent_at = now
                        markers.append(part.tp)
                    wait = min(wait, max(max_age - age, 0.05))
                if ready:
                    _, part, n = min(ready, key=lambda r: r[0])
                    messages = [part.messages.popleft() for _ in range(n)]
                    cut_markers = sum(1 for m in messages if kafka_codec.is_marker(m.value, m.headers))
                    part.markers -= cut_markers
                    if cut_markers:
                        # the marker asked for has arrived: the next partial batch may ask for its own once it
                        # is old enough, without waiting out the retry interval of this one
                        part.marker_sent_at = None
                    records = sum(kafka_codec.record_count(m.headers) for m in messages if m.value)
                    part.records -= records
                    self._buffered -= records
                    part.in_flight = True
                    part.first_arrival = now
                    return part, messages
                for tp in markers:
                    self._loop.submit(self._send_marker(tp))
                self._cond.wait(wait)
        return None

    def _build(self, part: _Partition, messages: list[Any]) -> Batch | None:
        """Decode a cut range; dead-letter what does not decode; None if nothing is left to store."""
        decoder = kafka_codec.WireBatch()  # validated, kept as protobuf: ClickHouse parses it, no Python object per span
        dead: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        for m in messages:
            if kafka_codec.is_marker(m.value, m.headers):
                continue
            try:
                decoder.add(m.value, m.headers)
            except kafka_codec.RecordDecodeError as exc:
                dead.append((m.key, m.value, [*m.headers, (kafka_codec.ERROR_HEADER, str(exc).encode()),
                                               (kafka_codec.SOURCE_HEADER, f"{m.topic}/{m.partition}/{m.offset}".encode())]))
        handle = _Handle(part.tp, part.generation, messages[-1].offset + 1, len(messages))
        if dead and not self._send_dead_letters(dead, "undecodable"):
            return None  # closing: the range stays uncommitted
        if not len(decoder):
            self.commit(Batch(records=[], handle=handle))
            return None
        return Batch(records=decoder, dedup_token=dedup_token(part.tp.topic, part.tp.partition, messages),
                     handle=handle)

    def _send_dead_letters(self, dead: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
                           reason: str) -> bool:
        """Produce to the DLQ, retrying while the brokers are down; False if closed meanwhile."""
        delay = 0.5
        while True:
            try:
                self._loop.call(self._dead_letter(dead), timeout=self._s.kafka_request_timeout_ms / 1000 + 5)
                break
            except Exception as exc:
                if self._closed:
                    return False
                log.warning("dead-letter topic not reachable, retrying", error=str(exc)[:300])
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._metrics.dlq.labels(reason=reason).inc(len(dead))
        log.warning("messages sent to the dead-letter topic", count=len(dead), topic=self._s.kafka_dlq_topic,
                    reason=reason, error=dead[0][2][-2][1].decode(errors="replace")[:300])
        return True

    def commit(self, batch: Batch) -> None:
        handle: _Handle = batch.handle
        try:
            self._loop.call(self._consumer.commit({handle.tp: handle.next_offset}),
                            timeout=self._s.kafka_request_timeout_ms / 1000 + 5)
        except Exception as exc:  # rebalanced away or broker gone: the range is redelivered and deduplicated
            self._metrics.commit_failures.inc()
            log.warning("offset commit failed; the range will be redelivered", partition=handle.tp.partition,
                        offset=handle.next_offset, error=f"{type(exc).__name__}: {exc}"[:300])
        else:
            self._metrics.batches.inc()
            self._metrics.committed_records.inc(len(batch.records))
        with self._cond:
            part = self._parts.get(handle.tp)
            if part is not None and part.generation == handle.generation:
                part.in_flight = False
                part.next_offset = handle.next_offset
            self._cond.notify_all()

    def dead_letter_parking(self, fallback: str | Path) -> ParkingLot:
        """A ParkingLot for the batch writer that sends refused batches to the DLQ (disk if that fails)."""
        return _DeadLetterParking(self, fallback)


class _DeadLetterParking(ParkingLot):
    """Batches the store refuses for good go to the dead-letter topic, with the error in a header."""

    def __init__(self, reader: KafkaBatchReader, fallback: str | Path) -> None:
        super().__init__(fallback, default_fallbacks())
        self._reader = reader

    def park(self, records: Records, error: str) -> Path:
        if not isinstance(records, list):
            records = records.to_records()
        items = [(r.trace_id.encode(), kafka_codec.encode(r), [(kafka_codec.ERROR_HEADER, error.encode()[:4096])])
                 for r in records]
        try:
            self._reader._loop.call(self._reader._dead_letter(items), timeout=60)
        except Exception as exc:
            log.error("dead-letter topic unreachable; parking on disk", error=str(exc)[:300])
            return super().park(records, error)
        self._reader._metrics.dlq.labels(reason="refused_by_store").inc(len(items))
        return Path(f"kafka:{self._reader._s.kafka_dlq_topic}")
