"""Batch boundaries come from the log alone, so a redelivered range is the same batch with the same token."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_reader import cut_index, dedup_token
from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordV1
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.types import SpanRecord
from tests.kafka.conftest import produce, record, started_reader


@dataclass
class Msg:
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)




def test_cut_at_marker_or_size_only() -> None:
    """A batch ends at the first marker (inclusive) or at max_records; otherwise it is not decided yet."""
    data = [Msg(i, b"v") for i in range(5)]
    assert cut_index(data, 10) is None
    assert cut_index(data, 3) == 3
    with_marker = [*data[:2], Msg(2, b"", kafka_codec.MARKER_HEADERS), *data[3:]]
    assert cut_index(with_marker, 10) == 3
    assert cut_index(with_marker, 2) == 2


def test_cut_counts_the_records_of_batch_messages() -> None:
    """A batch ends at the first message that brings it to max_records span records (per lct-batch headers)."""
    data = [Msg(i, b"v", kafka_codec.batch_headers(n)) for i, n in enumerate([40, 30, 50, 10])]
    assert cut_index(data, 200) is None
    assert cut_index(data, 70) == 2  # 40 + 30 reaches 70 exactly
    assert cut_index(data, 71) == 3  # the third message takes it to 120: inclusive, never split
    assert cut_index(data, 1) == 1
    assert cut_index([data[0], Msg(1, b"", kafka_codec.MARKER_HEADERS), data[2]], 1000) == 2


def test_token_depends_on_range_and_content() -> None:
    """Same range and values give the same token; another range or other values give another."""
    a = [Msg(5, b"x"), Msg(6, b"y")]
    assert dedup_token("t", 0, a) == dedup_token("t", 0, [Msg(5, b"x"), Msg(6, b"y")])
    assert dedup_token("t", 0, a) != dedup_token("t", 1, a)
    assert dedup_token("t", 0, a) != dedup_token("t", 0, [Msg(5, b"x"), Msg(6, b"z")])
    assert dedup_token("t", 0, a) != dedup_token("t", 0, [Msg(5, b"x")])


def test_redelivered_range_is_deduplicated(kafka_settings: Settings, store: Any) -> None:
    """Insert without commit, crash, re-read: the new member cuts the same batch and the insert is a no-op."""
    settings = kafka_settings.replace(kafka_partitions=1)
    produce(settings, [kafka_codec.encode(record(i)) for i in range(7)])
    sink = ClickHouseSink(store)
    first = started_reader(settings)
    batch = first.take(max_records=100, max_age_seconds=0.3)  # age-limited: closed by a flush marker
    assert batch is not None and len(batch.records) == 7
    sink.write(batch.records, batch.dedup_token)
    first.stop()  # "crash": inserted, never committed
    produce(settings, [kafka_codec.encode(record(i)) for i in range(7, 10)])  # more data behind the marker
    second = started_reader(settings)
    try:
        again = second.take(max_records=100, max_age_seconds=0.3)
        assert again is not None and again.dedup_token == batch.dedup_token
        assert again.records == batch.records
        sink.write(again.records, again.dedup_token)
        second.commit(again)
        rest = second.take(max_records=100, max_age_seconds=0.3)
        assert rest is not None and len(rest.records) == 3
        sink.write(rest.records, rest.dedup_token)
        second.commit(rest)
    finally:
        second.stop()
    count, cost = store.query("SELECT count(), sum(cost_usd) FROM llm_spans").result_rows[0]
    assert count == 10
    assert cost * 10**12 == sum(1_000_000 + i for i in range(10))


def _encoded_batch(records: list[SpanRecord]) -> bytes:
    return kafka_codec.encode_batch([kafka_codec.encode(r) for r in records])


def test_bad_batch_message_goes_to_dlq_whole(kafka_settings: Settings) -> None:
    """A SpanRecordBatchV1 with one unusable record is dead-lettered as a whole (value and lct-batch header kept);
    the batch boundary counts records, and the other messages' records are returned in order."""
    settings = kafka_settings.replace(kafka_partitions=1)
    bad = kafka_codec.encode_batch([kafka_codec.encode(record(3)), SpanRecordV1(trace_id="t").SerializeToString()])
    produce(settings, [_encoded_batch([record(i) for i in range(3)]), bad, _encoded_batch([record(4), record(5)]),
                        _encoded_batch([record(6)])],
             [kafka_codec.batch_headers(n) for n in (3, 2, 2, 1)])
    reader = started_reader(settings)
    try:
        batch = reader.take(max_records=7, max_age_seconds=5)  # 3 + 2 + 2 records: cut after the third message
        assert batch is not None
        assert [r.span_id for r in batch.records] == [record(i).span_id for i in (0, 1, 2, 4, 5)]
        assert batch.dedup_token.startswith(f"{settings.kafka_topic}/0/0-2/")
        reader.commit(batch)
    finally:
        reader.stop()
    dead = asyncio.run(_read_dlq(settings))
    assert len(dead) == 1 and dead[0].value == bad
    headers = dict(dead[0].headers)
    assert headers[kafka_codec.BATCH_HEADER] == b"2"
    assert headers[kafka_codec.SOURCE_HEADER] == f"{settings.kafka_topic}/0/1".encode()


async def _read_dlq(settings: Settings) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(settings.kafka_dlq_topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = await consumer.getmany(timeout_ms=500)
            if data:
                return [m for msgs in data.values() for m in msgs]
        return []
    finally:
        await consumer.stop()


def test_undecodable_message_goes_to_dlq_and_the_batch_goes_on(kafka_settings: Settings) -> None:
    """A garbage value is dead-lettered with the error header; the valid records of its range are returned."""
    settings = kafka_settings.replace(kafka_partitions=1)
    produce(settings, [kafka_codec.encode(record(0)), b"\x08\x96\x01garbage\xff", kafka_codec.encode(record(1))])
    reader = started_reader(settings)
    try:
        batch = reader.take(max_records=3, max_age_seconds=5)
        assert batch is not None and [r.span_id for r in batch.records] == [record(0).span_id, record(1).span_id]
        reader.commit(batch)
    finally:
        reader.stop()

    dead = asyncio.run(_read_dlq(settings))
    assert len(dead) == 1 and dead[0].value == b"\x08\x96\x01garbage\xff"
    headers = dict(dead[0].headers)
    assert b"SpanRecordV1" in headers[kafka_codec.ERROR_HEADER]
    assert headers[kafka_codec.SOURCE_HEADER] == f"{settings.kafka_topic}/0/1".encode()


def test_full_buffer_still_lets_the_flush_marker_in(kafka_settings: Settings) -> None:
    """Over the buffer limit, a partition without a complete batch keeps fetching, so its marker arrives."""
    settings = kafka_settings.replace(kafka_partitions=1, kafka_consumer_buffer_records=5)
    produce(settings, [kafka_codec.encode(record(i)) for i in range(20)])
    reader = started_reader(settings)
    try:
        batch = reader.take(max_records=100, max_age_seconds=0.3)
        assert batch is not None and len(batch.records) == 20
        reader.commit(batch)
    finally:
        reader.stop()


def test_each_partial_batch_gets_its_marker_at_its_age_limit(kafka_settings: Settings,
                                                             monkeypatch: Any) -> None:
    """A partial batch closed by a flush marker does not hold back the marker of the next one: with the marker
    retry interval made an hour, three age-limited batches in a row are each closed by their own marker, also
    on a machine booted a moment ago (the reader's monotonic clock starts near 0)."""
    import threading
    import types

    from llm_cost_tracker.queue import kafka_reader

    monkeypatch.setattr(kafka_reader, "_MARKER_RETRY_SECONDS", 3600.0)
    booted = time.monotonic() - 0.5  # as if the machine had been up half a second
    just_booted = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("_")})
    just_booted.monotonic = lambda: time.monotonic() - booted
    monkeypatch.setattr(kafka_reader, "time", just_booted)
    settings = kafka_settings.replace(kafka_partitions=1)
    reader = started_reader(settings)
    give_up = threading.Timer(60, reader.close)  # a marker held back for the hour: take() returns None
    give_up.start()
    try:
        for round_ in range(3):
            produce(settings, [kafka_codec.encode(record(10 * round_ + i)) for i in range(3)])
            batch = reader.take(max_records=100, max_age_seconds=0.3)
            assert batch is not None, f"no marker for batch {round_}"
            assert len(batch.records) == 3
            reader.commit(batch)
    finally:
        give_up.cancel()
        reader.stop()
