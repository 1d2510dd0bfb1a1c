"""Faults on the Kafka path: consumer killed mid-stream, broker stopped, garbage on the topic, overload."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.kafka import KafkaPublisher
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.queue.kafka_testing import KafkaProcess, TansuBroker, sql
from llm_cost_tracker.services.kafka import Consumer, Receiver
from llm_cost_tracker.testing import genai_attributes, make_request, make_span, span_record
from llm_cost_tracker.types import QueueBusy

from .conftest import test_compression
from .test_end_to_end import send_spans, wait_rows

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MODELS = (("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-3-5-sonnet-20241022"))


def payloads(requests: int, spans_per_request: int) -> list[ExportTraceServiceRequest]:
    """The Export requests :func:`export_all` sends: three models, tokens varying with the span and request."""
    out = []
    for r in range(requests):
        spans = []
        for i in range(spans_per_request):
            provider, model = MODELS[(r + i) % len(MODELS)]
            spans.append(make_span(genai_attributes(model=model, provider=provider, input_tokens=100 + i,
                                                    output_tokens=10 + r % 13)))
        out.append(make_request(spans, {"service.name": "faults"}))
    return out


def export_all(endpoint: str, requests: int, spans_per_request: int, errors: list[str]) -> None:
    """Export prepared requests with raw grpc, retrying UNAVAILABLE/RESOURCE_EXHAUSTED like a collector."""
    channel = grpc.insecure_channel(endpoint)
    export = channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                 response_deserializer=lambda b: b)
    for payload in payloads(requests, spans_per_request):
        for _attempt in range(60):
            try:
                export(payload, timeout=30)
                break
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    errors.append(f"{exc.code()}: {exc.details()}")
                    return
                time.sleep(0.5)
        else:
            errors.append("export never accepted")
    channel.close()


def priced_cost_by_model(requests: int, spans_per_request: int) -> dict[str, Decimal]:
    """Exact spend of the :func:`export_all` requests per model, priced by the receivers' own transforms."""
    from llm_cost_tracker.frontend import default_transforms, load_catalog
    from llm_cost_tracker.sources.otlp_decode import DecodeLimits, decode_spans

    settings = Settings()
    catalog = load_catalog(settings.pricing, settings.store)
    transforms = default_transforms(lambda: catalog.current, Metrics())
    totals: dict[str, int] = {}
    for payload in payloads(requests, spans_per_request):
        for record in decode_spans(payload, DecodeLimits()).records:
            for transform in transforms:
                record = transform(record)
            totals[record.response_model or record.request_model] = (
                totals.get(record.response_model or record.request_model, 0) + (record.cost_pusd or 0))
    return {m: Decimal(v) / 10**12 for m, v in totals.items()}


def consumer_args(broker: TansuBroker) -> list[str]:
    return ["--kafka-bootstrap", broker.bootstrap, "--no-kafka-idempotence", "--kafka-compression", test_compression(),
            "--kafka-session-timeout-ms", "1000", "--kafka-heartbeat-interval-ms", "200", "--kafka-partitions", "4",
            "--batch-size", "2000", "--batch-age-seconds", "0.3", "--log-level", "warning"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_consumer_killed_mid_stream_costs_still_add_up(kafka_settings: Settings, tansu: TansuBroker,
                                                       tmp_path: Path) -> None:
    """kill -9 of the consumer while 50,000 spans stream through, then a restart: per-model cost totals in
    llm_spans and in the hourly/daily rollups equal what the receiver priced and sent."""
    metrics = Metrics()
    receiver = Receiver(kafka_settings.replace(grpc_workers=4), metrics)
    receiver.start()
    data_dir = tmp_path / "consumer"
    consumer = KafkaProcess("consumer", data_dir, *consumer_args(tansu)).start()
    errors: list[str] = []
    sender = threading.Thread(target=export_all, args=(f"127.0.0.1:{receiver.grpc_port}", 100, 500, errors))
    sender.start()
    try:
        deadline = time.monotonic() + 120
        while consumer.metric("llm_pipeline_rows_written_total") < 12_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        consumer.kill()  # mid-stream: batches inserted but not committed are redelivered
        killed_after = time.monotonic()
        consumer = KafkaProcess("consumer", data_dir, *consumer_args(tansu)).start()
        sender.join(180)
        # the reference totals are priced here while the consumer process drains (this process is idle then)
        reference = concurrent.futures.ThreadPoolExecutor(1)
        priced = reference.submit(priced_cost_by_model, 100, 500)
        assert not errors, errors
        assert metrics.spans_received.labels(kind="llm")._value.get() == 50_000
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lag = consumer.metric("llm_kafka_consumer_lag")
            committed = consumer.metric("llm_kafka_committed_records_total")
            if lag == 0 and committed > 0 and consumer.metric("llm_kafka_buffered_records") == 0:
                break
            time.sleep(0.3)
        assert consumer.stop() == 0
    finally:
        receiver.stop()
        consumer.kill()
    sent = priced.result()
    reference.shutdown()
    assert time.monotonic() > killed_after
    # one `sql` run reads the raw table and both rollups (t names the table of each row)
    everything = sql(data_dir, "SELECT 'llm_spans' AS t, response_model AS m, count() AS n, uniqExact(span_id) AS u, "
                               "toString(sum(cost_usd)) AS c FROM llm_spans GROUP BY m"
                               + "".join(f" UNION ALL SELECT '{table}' AS t, model AS m, sum(requests) AS n, 0 AS u, "
                                         f"toString(sum(cost_usd)) AS c FROM {table} GROUP BY m"
                                         for table in ("llm_spend_hourly", "llm_spend_daily")))
    rows = [r for r in everything if r["t"] == "llm_spans"]
    assert sum(int(r["n"]) for r in rows) == 50_000
    assert all(int(r["n"]) == int(r["u"]) for r in rows)
    assert {r["m"]: Decimal(r["c"]) for r in rows} == sent
    for table in ("llm_spend_hourly", "llm_spend_daily"):
        rollup = [r for r in everything if r["t"] == table]
        assert {r["m"]: Decimal(r["c"]) for r in rollup} == sent, table
        assert sum(int(r["n"]) for r in rollup) == 50_000, table


@pytest.mark.timeout(120)
def test_broker_down_gives_unavailable_then_everything_arrives_once(kafka_settings: Settings, tansu: TansuBroker,
                                                                   store: Any) -> None:
    """With the broker stopped, Exports get UNAVAILABLE; the exporter retries and after the broker is back
    every span is stored exactly once."""
    metrics = Metrics()
    receiver = Receiver(kafka_settings, metrics)
    receiver.start()
    consumer = Consumer(kafka_settings, Metrics(), serve_http=False)
    consumer.start()
    try:
        tansu.kill()  # memory storage: topics, offsets and groups are gone with it
        result: dict[str, int] = {}
        sender = threading.Thread(target=lambda: result.update(send_spans(f"127.0.0.1:{receiver.grpc_port}", 1500)))
        sender.start()
        deadline = time.monotonic() + 30
        while metrics.exports.labels(code="UNAVAILABLE")._value.get() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metrics.exports.labels(code="UNAVAILABLE")._value.get() >= 2
        assert not receiver.ready()[0]
        tansu.start()
        sender.join(90)
        assert sum(result.values()) == 1500
        assert wait_rows(store, 1500, timeout=60) == 1500
        time.sleep(1.0)
        count, unique = store.query("SELECT count(), uniqExact(span_id) FROM llm_spans").result_rows[0]
        assert (count, unique) == (1500, 1500)
    finally:
        receiver.stop()
        consumer.stop()


@pytest.mark.timeout(120)
def test_garbage_on_the_topic_goes_to_dlq_and_nothing_stops(kafka_settings: Settings, store: Any) -> None:
    """A record that is not a SpanRecordV1 is dead-lettered; the spans around it are all stored."""
    receiver = Receiver(kafka_settings, Metrics())
    receiver.start()
    consumer_metrics = Metrics()
    km = KafkaMetrics(consumer_metrics)
    consumer = Consumer(kafka_settings, consumer_metrics, km, serve_http=False)
    consumer.start()
    errors: list[str] = []
    try:
        export_all(f"127.0.0.1:{receiver.grpc_port}", 4, 250, errors)

        async def garbage() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap)
            await producer.start()
            await producer.send_and_wait(kafka_settings.kafka_topic, os.urandom(64), key=b"junk")
            await producer.stop()

        asyncio.run(garbage())
        export_all(f"127.0.0.1:{receiver.grpc_port}", 4, 250, errors)
        assert not errors
        assert wait_rows(store, 2000) == 2000
        deadline = time.monotonic() + 20
        while km.dlq.labels(reason="undecodable")._value.get() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert km.dlq.labels(reason="undecodable")._value.get() == 1
        assert consumer.ready() == (True, "ok")
    finally:
        receiver.stop()
        consumer.stop()


def test_too_much_in_flight_is_busy_not_buffered(kafka_settings: Settings) -> None:
    """Past kafka_max_in_flight_records, publish raises QueueBusy (RESOURCE_EXHAUSTED) instead of queueing."""
    km = KafkaMetrics(Metrics())
    publisher = KafkaPublisher(kafka_settings.replace(kafka_max_in_flight_records=100, kafka_linger_ms=200).kafka, km)
    assert publisher.start()
    records = [span_record() for _ in range(100)]
    try:
        ack = publisher.publish(records)
        with pytest.raises(QueueBusy) as info:
            publisher.publish(records[:1])
        assert info.value.retry_after_seconds > 0
        ack.result(timeout=10)
        publisher.publish(records[:1]).result(timeout=10)  # room again once acknowledged
        assert km.busy._value.get() == 1 and km.produced._value.get() == 101
    finally:
        publisher.close()
