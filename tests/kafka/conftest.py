"""Kafka fixtures: a real tansu broker per test, settings pointing at it and at a fresh chDB database; and the
helpers the reader tests share (a numbered record, producing onto partition 0, a started reader)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.queue.kafka_reader import KafkaBatchReader
from llm_cost_tracker.queue.kafka_testing import TansuBroker
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage


def test_compression() -> str:
    """zstd (the default) when its codec is installed, else gzip."""
    from aiokafka import codec

    return "zstd" if codec.has_zstd() else "gzip"


test_compression.__test__ = False  # type: ignore[attr-defined]

# tansu rejects the idempotent producer (InitProducerId v0); short group timeouts keep joins quick.
KAFKA_TEST_SETTINGS = dict(kafka_idempotence=False, kafka_session_timeout_ms=1000, kafka_heartbeat_interval_ms=200,
                           kafka_partitions=4, kafka_request_timeout_ms=3000, batch_age_seconds=0.3,
                           otlp_grpc="127.0.0.1:0", otlp_http="off", http="127.0.0.1:0", shutdown_timeout_seconds=10.0)


@pytest.fixture
def kafka_settings(store_settings: Settings, tansu: TansuBroker) -> Settings:
    """Settings for in-process services: the test's tansu and a fresh database in the session's chDB."""
    return store_settings.replace(kafka_bootstrap=tansu.bootstrap, kafka_compression=test_compression(),
                                  **KAFKA_TEST_SETTINGS)


def record(i: int) -> SpanRecord:
    """A priced span record whose ids and start time are ``i`` (its cost too: sums say which were stored)."""
    return span_record(trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time_ns=1_700_000_000_000_000_000 + i,
                       duration_ns=10, provider="openai", request_model="gpt-4o", response_model="gpt-4o",
                       usage=TokenUsage(10, 2), cost_pusd=1_000_000 + i)


def produce(settings: Settings, values: list[bytes], headers: list[list[tuple[str, bytes]]] | None = None) -> None:
    """``values`` onto partition 0 of the span topic, in order, each acknowledged before the next is sent."""
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i, v in enumerate(values):
                await producer.send_and_wait(settings.kafka_topic, v, key=b"k", partition=0,
                                             headers=headers[i] if headers else None)
        finally:
            await producer.stop()

    asyncio.run(go())


def started_reader(settings: Settings) -> KafkaBatchReader:
    """A reader in the consumer group, its topics made first (stop it when done)."""
    from llm_cost_tracker.queue.kafka_client import LoopThread, ensure_topics

    loop = LoopThread("admin")
    loop.call(ensure_topics(settings.kafka, [settings.kafka_topic, settings.kafka_dlq_topic]))
    loop.stop()
    reader = KafkaBatchReader(settings.kafka, KafkaMetrics(Metrics()), max_records=settings.batch_size)
    reader.start()
    return reader
