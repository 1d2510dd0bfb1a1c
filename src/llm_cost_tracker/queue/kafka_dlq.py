"""Dead letters back onto the spans topic, once the reason they were dead-lettered is fixed.

The consumer dead-letters a message it cannot decode and a batch the store refused for good
(``queue/kafka_reader.py``, docs/kafka.md): kept in the dead-letter topic, never dropped. This reads
the dead-letter topic in a consumer group of its own (``<group>-dlq-replay``, so each run starts where
the last one stopped), and produces every message that now passes the consumer's checks to the spans
topic again, with its key and headers but without the dead-letter ones (``lct-error``, ``lct-source``).
The consumer then stores it as any other message; span identity and the batch tokens keep a span that
got stored before from being counted twice. A message that still does not decode is left where it is
and reported; the group's offset moves past it either way, so the next run looks only at new letters.

It stops once it has read what the topic held when it started (its end offsets then), so a replay that
produces a letter which is dead-lettered again does not loop. Its commit moves past every letter up to there,
so it takes a partition's letters only without a hole (``kafka_offsets``): a fetch that skipped one is read
again, and a hole the log itself has (retention) is named in the result.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from llm_cost_tracker.config import KafkaConfig
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_client import client_options, compression_type, start_producer
from llm_cost_tracker.queue.kafka_offsets import Admitted, PartitionOffsets

__all__ = ["DLQ_GROUP_SUFFIX", "DlqReplay", "replay_dead_letters"]

DLQ_GROUP_SUFFIX = "-dlq-replay"
"""The replay's consumer group is the consumers' group with this suffix (its offsets are its own)."""
_DEAD_LETTER_HEADERS = frozenset({kafka_codec.ERROR_HEADER, kafka_codec.SOURCE_HEADER})


@dataclass
class DlqReplay:
    """What one replay did: letters read, sent back (and their span records), and those that still do not
    decode, each with where it came from and why."""

    read: int = 0
    sent: int = 0
    records: int = 0
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    """(``lct-source`` of the letter or its DLQ position, the error now)."""
    passed: list[str] = field(default_factory=list)
    """Offsets of the dead-letter topic it no longer held (``topic/partition/first-last``): those letters are lost."""


def _source(message: Any) -> str:
    for name, value in message.headers:
        if name == kafka_codec.SOURCE_HEADER:
            return bytes(value).decode(errors="replace")
    return f"{message.topic}/{message.partition}/{message.offset}"


async def replay_dead_letters(config: KafkaConfig, *, dry_run: bool = False, join_timeout: float = 60.0) -> DlqReplay:
    """Produce the dead letters that now decode to ``kafka_topic`` again (see the module docstring).

    Args:
        config: the Kafka section (bootstrap, topics, group, security).
        dry_run: read and check, produce and commit nothing (the next run sees the same letters).
        join_timeout: seconds to wait for the group to assign the dead-letter topic's partitions.
    """
    options = client_options(config)
    consumer = AIOKafkaConsumer(**options, group_id=config.kafka_group_id + DLQ_GROUP_SUFFIX,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=config.kafka_session_timeout_ms,
                                heartbeat_interval_ms=config.kafka_heartbeat_interval_ms)
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=config.kafka_idempotence,
                                compression_type=compression_type(config))
    await consumer.start()
    try:
        if not dry_run:
            await start_producer(producer, config)
        try:
            return await _replay(consumer, producer, config, dry_run, join_timeout)
        finally:
            if not dry_run:
                await producer.stop()
    finally:
        await consumer.stop()


async def _behind(consumer: Any, ends: dict[TopicPartition, int]) -> bool:
    """Whether some partition is not yet read up to where it ended when the replay started."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _replay(consumer: Any, producer: Any, config: KafkaConfig, dry_run: bool, join_timeout: float) -> DlqReplay:
    consumer.subscribe([config.kafka_dlq_topic])
    deadline = time.monotonic() + join_timeout
    fetched: dict[TopicPartition, list[Any]] = {}
    while not consumer.assignment():  # getmany joins the group; the call that gets the assignment may fetch too
        if time.monotonic() > deadline:
            raise TimeoutError(f"no partition of {config.kafka_dlq_topic} was assigned within {join_timeout:.0f} s")
        fetched = await consumer.getmany(timeout_ms=200)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(sorted(consumer.assignment(),
                                                                         key=lambda tp: tp.partition))
    result = DlqReplay()
    sends: list[Any] = []
    offsets: dict[TopicPartition, PartitionOffsets] = {}
    while True:
        for tp, messages in fetched.items():
            admitted = _holes(consumer, tp, offsets.setdefault(tp, PartitionOffsets()).admit(messages), result)
            for message in admitted.messages:
                if message.offset >= ends.get(tp, 0):
                    continue  # written after the replay started (perhaps by it): the next run's
                send = _letter(message, config, result)
                if send is not None and not dry_run:
                    sends.append(await producer.send(config.kafka_topic, value=message.value, key=message.key,
                                                     headers=send))
        for tp, end in ends.items():  # read up to its end, but perhaps not every letter below it handed over
            if tp in offsets and await consumer.position(tp) >= end:
                _holes(consumer, tp, offsets[tp].admit_end(end), result)
        if not await _behind(consumer, ends):
            break
        fetched = await consumer.getmany(*[tp for tp, end in ends.items() if end > 0], timeout_ms=500)
    if dry_run:
        return result
    await asyncio.gather(*sends)  # every letter acknowledged by the brokers before the offsets move
    await consumer.commit(dict(ends))
    return result


def _holes(consumer: Any, tp: TopicPartition, admitted: Admitted, result: DlqReplay) -> Admitted:
    """Act on the holes ``admitted`` found in ``tp``: fetch again from one, name those the log itself has."""
    result.passed += [f"{tp.topic}/{tp.partition}/{first}-{last}" for first, last in admitted.passed]
    if admitted.reread_from is not None:
        consumer.seek(tp, admitted.reread_from)
    return admitted


def _letter(message: Any, config: KafkaConfig, result: DlqReplay) -> list[tuple[str, bytes]] | None:
    """The headers to send ``message`` back with, or None when it still does not decode (recorded in ``result``)."""
    result.read += 1
    headers = [(k, bytes(v)) for k, v in message.headers if k not in _DEAD_LETTER_HEADERS]
    try:
        _, count = kafka_codec.validated_records(message.value, headers)
    except kafka_codec.RecordDecodeError as exc:
        result.undecodable.append((_source(message), str(exc)[:300]))
        return None
    result.sent += 1
    result.records += count
    return headers
