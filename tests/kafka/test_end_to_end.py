"""OTel SDK exporter -> receiver -> tansu -> two consumers in one group -> chDB: every span exactly once."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.services.kafka import Consumer, Receiver
from llm_cost_tracker.testing import genai_attributes

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")


def send_spans(endpoint: str, count: int, service: str = "e2e") -> dict[str, int]:
    """Export ``count`` LLM spans through the OTel SDK; returns the spans sent per model."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=30),
                                   max_queue_size=count + 1000, max_export_batch_size=512, schedule_delay_millis=50)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("e2e")
    sent: dict[str, int] = {}
    for i in range(count):
        model = MODELS[i % len(MODELS)]
        provider_name = "anthropic" if model.startswith("claude") else "openai"
        with tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attributes(genai_attributes(model=model, provider=provider_name, input_tokens=100 + i % 50,
                                                 output_tokens=20 + i % 7))
        sent[model] = sent.get(model, 0) + 1
    assert processor.force_flush(120_000)
    provider.shutdown()
    return sent


def wait_rows(client: Any, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        rows = int(client.query("SELECT count() FROM llm_spans").result_rows[0][0])
        if rows >= expected:
            return rows
        time.sleep(0.2)
    return rows


@pytest.mark.timeout(120)
def test_two_consumers_store_every_span_once(kafka_settings: Settings, store: Any) -> None:
    """Spans exported through the receiver reach chDB once each, split across two consumers in one group."""
    metrics = Metrics()
    km = KafkaMetrics(metrics)
    receiver = Receiver(kafka_settings, metrics, km)
    receiver.start()
    consumers = [Consumer(kafka_settings, Metrics(), serve_http=False) for _ in range(2)]
    try:
        for c in consumers:
            c.start()
        sent = send_spans(f"127.0.0.1:{receiver.grpc_port}", 3000)
        assert wait_rows(store, 3000) == 3000
        # anything extra would show up once every record produced is committed: a range inserted twice (one
        # member's batch redelivered to the other) is inserted again before its commit
        deadline = time.monotonic() + 30
        while sum(c.kafka_metrics.committed_records._value.get() for c in consumers) < km.produced._value.get():
            assert time.monotonic() < deadline, "not every produced record was committed"
            time.sleep(0.05)
        rows = store.query("SELECT response_model, count(), uniqExact(span_id), sum(cost_usd) FROM llm_spans "
                           "GROUP BY response_model").result_rows
        assert {m: n for m, n, _, _ in rows} == sent
        assert all(n == uniq for _, n, uniq, _ in rows)
        assert all(cost > Decimal(0) for *_, cost in rows)
        assert km.produced._value.get() == 3000
        stored = [c.metrics.rows_written._value.get() for c in consumers]
        assert sum(stored) == 3000 and all(n > 0 for n in stored), stored  # both members took partitions
    finally:
        receiver.stop()
        for c in consumers:
            c.stop()


@pytest.mark.timeout(120)
def test_run_with_kafka_bootstrap_goes_through_the_broker(tansu: Any, tmp_path: Any) -> None:
    """``run --kafka-bootstrap`` serves OTLP, publishes to the broker and stores from it, in one process."""
    from llm_cost_tracker.queue.kafka_testing import KafkaProcess, sql

    from .conftest import test_compression

    service = KafkaProcess("run", tmp_path / "run", "--kafka-bootstrap", tansu.bootstrap, "--no-kafka-idempotence",
                           "--kafka-compression", test_compression(), "--kafka-session-timeout-ms", "1000",
                           "--kafka-heartbeat-interval-ms", "200", "--batch-age-seconds", "0.3").start()
    try:
        sent = send_spans(service.endpoint, 300)
        deadline = time.monotonic() + 30
        while service.metric("llm_kafka_committed_records_total") < 300 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.metric("llm_kafka_produced_records_total") == 300
        assert service.stop() == 0, service.log()
    finally:
        service.kill()
    rows = sql(service.data_dir, "SELECT response_model AS m, count() AS n FROM llm_spans GROUP BY m")
    assert {r["m"]: r["n"] for r in rows} == sent
