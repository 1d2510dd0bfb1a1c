"""Kafka fixtures: a real tansu broker per test, settings pointing at it and at a fresh chDB database."""

from __future__ import annotations

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue.kafka_testing import TansuBroker


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
