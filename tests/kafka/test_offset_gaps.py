"""A fetch that skips offsets never lets the reader commit past spans it was not handed: it reads them again,
and passes a gap only when the log itself holds nothing there (counted and logged)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.queue.kafka_reader import KafkaBatchReader, _Partition
from llm_cost_tracker.types import Batch
from tests.kafka.conftest import produce, record, started_reader


def _gaps(metrics: KafkaMetrics, outcome: str) -> float:
    return float(metrics.offset_gaps.labels(outcome=outcome)._value.get())


def _past_offset_3(settings: Settings) -> KafkaBatchReader:
    """A reader that stored and committed offsets 0-2, whose consumer's position was then moved to 4 behind its
    back (what a client or broker fault did to one message in a benchmark): offset 3, produced next, is skipped."""
    produce(settings, [kafka_codec.encode(record(i)) for i in range(3)])
    reader = started_reader(settings)

    async def skip_one() -> None:
        reader._consumer.seek(TopicPartition(settings.kafka_topic, 0), 4)

    try:
        first = reader.take(max_records=3, max_age_seconds=5)
        assert first is not None and [r.span_id for r in first.records] == [record(i).span_id for i in range(3)]
        reader.commit(first)
        reader._loop.call(skip_one())
    except BaseException:
        reader.stop()
        raise
    return reader


def test_a_skipped_offset_is_read_again_before_anything_is_committed_past_it(kafka_settings: Settings) -> None:
    """Offset 3 skipped, more messages after it: the reader notices the gap, reads the message again, and its
    batch holds every span in order."""
    settings = kafka_settings.replace(kafka_partitions=1)
    reader = _past_offset_3(settings)
    try:
        produce(settings, [kafka_codec.encode(record(i)) for i in range(3, 7)])
        second = reader.take(max_records=4, max_age_seconds=5)
        assert second is not None
        assert [r.span_id for r in second.records] == [record(i).span_id for i in range(3, 7)]
        reader.commit(second)
        assert _gaps(reader._metrics, "reread") == 1
        assert _gaps(reader._metrics, "skipped") == 0
    finally:
        reader.stop()


@dataclass
class _Message:
    offset: int
    value: bytes = b"v"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class _Consumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[TopicPartition, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def _offline_reader() -> tuple[KafkaBatchReader, _Partition, _Consumer]:
    reader = KafkaBatchReader(Settings().kafka, KafkaMetrics(Metrics()))
    consumer = _Consumer()
    reader._consumer = consumer
    tp = TopicPartition("spans", 0)
    part = reader._parts[tp] = _Partition(tp, 1)
    return reader, part, consumer


def _offsets(part: _Partition) -> list[int]:
    return [m.offset for m in part.messages]


def test_a_gap_is_read_again_once_then_passed_when_the_log_has_nothing_there() -> None:
    reader, part, consumer = _offline_reader()
    try:
        reader._buffer(part.tp, [_Message(0), _Message(1), _Message(2)], time.monotonic())  # where the group starts
        reader._buffer(part.tp, [_Message(3), _Message(6), _Message(7)], time.monotonic())  # 4 and 5 skipped
        assert _offsets(part) == [0, 1, 2, 3]
        assert consumer.seeks == [(part.tp, 4)]
        assert _gaps(reader._metrics, "reread") == 1

        reader._buffer(part.tp, [_Message(6), _Message(7)], time.monotonic())  # fetched from 4: the log has no 4, 5
        assert _offsets(part) == [0, 1, 2, 3, 6, 7]
        assert consumer.seeks == [(part.tp, 4)]
        assert _gaps(reader._metrics, "skipped") == 1

        reader._buffer(part.tp, [_Message(7), _Message(8)], time.monotonic())  # 7 again (a refetch): kept once
        assert _offsets(part) == [0, 1, 2, 3, 6, 7, 8]
        assert part.records == 7
    finally:
        reader._loop.stop()


def test_a_gap_inside_one_fetch_keeps_what_came_before_it() -> None:
    reader, part, consumer = _offline_reader()
    try:
        reader._buffer(part.tp, [_Message(10), _Message(11), _Message(13)], time.monotonic())
        assert _offsets(part) == [10, 11]
        assert consumer.seeks == [(part.tp, 12)]
        reader._buffer(part.tp, [_Message(12), _Message(13)], time.monotonic())  # read again: nothing was lost
        assert _offsets(part) == [10, 11, 12, 13]
        assert _gaps(reader._metrics, "skipped") == 0
    finally:
        reader._loop.stop()




def test_a_skipped_last_message_is_read_again_though_nothing_comes_after_it(kafka_settings: Settings) -> None:
    """The skipped message is the partition's last, so no later message shows the hole: once the consumer's
    position reached the high watermark while what it was handed stops short of it, the reader reads it again."""
    settings = kafka_settings.replace(kafka_partitions=1)
    reader = _past_offset_3(settings)
    try:
        produce(settings, [kafka_codec.encode(record(3))])
        taken: list[Batch | None] = []
        taker = threading.Thread(target=lambda: taken.append(reader.take(max_records=1, max_age_seconds=5)),
                                 daemon=True)
        taker.start()
        taker.join(20)
        assert taken, "the skipped last message was not handed over within 20 s"
        last = taken[0]
        assert last is not None and [r.span_id for r in last.records] == [record(3).span_id]
        reader.commit(last)
        assert _gaps(reader._metrics, "reread") == 1
    finally:
        reader.stop()
