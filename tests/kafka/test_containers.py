"""The Kafka path against Apache Kafka and a ClickHouse server (testcontainers).

These need a Docker engine and are skipped with the reason where there is none. Unlike tansu, Apache
Kafka keeps its log across client restarts and supports the idempotent producer, so these run with
the production defaults (idempotence on, zstd) and store over HTTP, with several consumers sharing
one ClickHouse as they would in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.testing import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _docker_reason() -> str | None:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return f"no Docker engine available ({type(exc).__name__}): testcontainers tests skipped"
    return None


@pytest.fixture(scope="module")
def containers() -> Iterator[dict[str, str]]:
    reason = _docker_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.clickhouse import ClickHouseContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    kafka = (DockerContainer("apache/kafka:3.9.0").with_bind_ports(9092, port)
             .with_env("KAFKA_NODE_ID", "1").with_env("KAFKA_PROCESS_ROLES", "broker,controller")
             .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
             .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
             .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
             .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
             .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
             .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
             .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
             .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
             .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
             .waiting_for(LogMessageWaitStrategy("Kafka Server started")))
    clickhouse = ClickHouseContainer("clickhouse/clickhouse-server:24.8")
    with kafka, clickhouse:
        http = f"http://{clickhouse.username}:{clickhouse.password}@{clickhouse.get_container_host_ip()}:" \
               f"{clickhouse.get_exposed_port(8123)}"
        yield {"bootstrap": f"127.0.0.1:{port}", "clickhouse_url": http}


@pytest.fixture
def server_settings(containers: dict[str, str], request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    database = f"k_{request.node.name[:30]}".replace("[", "_").replace("]", "_").replace("-", "_")
    topic = f"spans-{time.time_ns()}"
    return Settings(kafka_bootstrap=containers["bootstrap"], clickhouse_url=containers["clickhouse_url"],
                    clickhouse_database=database, kafka_topic=topic, kafka_dlq_topic=topic + ".dlq",
                    kafka_group_id=topic, data_dir=str(tmp_path), otlp_grpc="127.0.0.1:0", otlp_http="off", http="127.0.0.1:0",
                    kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=1000, batch_age_seconds=0.3)


def _client(settings: Settings) -> Any:
    import clickhouse_connect

    admin = clickhouse_connect.get_client(dsn=settings.clickhouse_url)
    admin.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
    return clickhouse_connect.get_client(dsn=settings.clickhouse_url, database=settings.clickhouse_database)


def test_apache_kafka_and_clickhouse_server_exactly_once(server_settings: Settings) -> None:
    """Idempotent producer on Apache Kafka, three consumers sharing one ClickHouse server: each span once."""
    from llm_cost_tracker.services.kafka import Consumer, Receiver

    from .test_end_to_end import send_spans

    client = _client(server_settings)
    receiver = Receiver(server_settings, Metrics())
    receiver.start()
    consumers = [Consumer(server_settings, Metrics(), serve_http=False) for _ in range(3)]
    try:
        for c in consumers:
            c.start()
        sent = send_spans(f"127.0.0.1:{receiver.grpc_port}", 3000)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if client.query("SELECT count() FROM llm_spans").result_rows[0][0] >= 3000:
                break
            time.sleep(0.3)
        consumers[0].stop()  # a member leaves: its partitions move, nothing is stored twice
        time.sleep(3)
        rows = client.query("SELECT response_model, count(), uniqExact(span_id) FROM llm_spans "
                            "GROUP BY response_model").result_rows
        assert {m: n for m, n, _ in rows} == sent
        assert all(n == u for _, n, u in rows)
    finally:
        receiver.stop()
        for c in consumers:
            c.stop()
