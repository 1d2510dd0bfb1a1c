"""Fixtures: a real tansu broker per test, and settings on it plus a fresh database of the session's chDB."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue.kafka_testing import TansuBroker

BATCH = Path(__file__).resolve().parents[1] / "scheduler" / "testdata" / "batch.json"

# tansu rejects the idempotent producer; short group timeouts keep joins quick; small solve budgets.
WORKER_TEST_SETTINGS = dict(kafka_idempotence=False, kafka_session_timeout_ms=1000, kafka_heartbeat_interval_ms=200,
                            kafka_partitions=2, kafka_request_timeout_ms=3000, kafka_compression="gzip",
                            http="127.0.0.1:0", scheduler_max_schedules=300, scheduler_time_limit_seconds=5.0,
                            scheduler_shutdown_seconds=5.0)


def batch_text(name: str = "nightly-evals") -> str:
    doc = json.loads(BATCH.read_text())
    doc["name"] = name
    return json.dumps(doc, indent=2)


@pytest.fixture
def worker_settings(store_settings: Settings, tansu: TansuBroker) -> Settings:
    return store_settings.replace(kafka_bootstrap=tansu.bootstrap, **WORKER_TEST_SETTINGS)


def produce(settings: Settings, records: list[tuple[str | None, bytes]], topic: str | None = None) -> None:
    """Publish (key, value) records to the tasks topic (created with 2 partitions first)."""
    from aiokafka import AIOKafkaProducer

    from llm_cost_tracker.queue.kafka_client import client_options, ensure_topics

    async def go() -> None:
        await ensure_topics(settings, [settings.scheduler_tasks_topic, settings.scheduler_results_topic])
        producer = AIOKafkaProducer(**client_options(settings), acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic or settings.scheduler_tasks_topic, value,
                                             key=key.encode() if key is not None else None)
        finally:
            await producer.stop()

    asyncio.run(go())


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every record on ``topic`` (no group; from the beginning to the end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from llm_cost_tracker.queue.kafka_client import client_options

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[Any] = []
            async def behind() -> bool:
                return any([await consumer.position(tp) < ends[tp] for tp in tps])

            while await behind():
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(batch)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(go())
