"""Span identity on the Kafka path (issue 14): spans that reach the topic twice (a retried Export, a receiver
that sent again) or come through both ingest paths are stored, rolled up and counted once."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.pipeline import AllInOne
from llm_cost_tracker.services.kafka import Consumer, Receiver
from llm_cost_tracker.testing import genai_attributes, make_request, make_span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
COST_PUSD = 4_500_000_000  # one gpt-4o span of genai_attributes: 1000 in at $2.50/M + 200 out at $10/M


def export(port: int, request: ExportTraceServiceRequest) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                            response_deserializer=lambda b: b)(request, timeout=30)


def spend_pusd(metrics: Metrics) -> int:
    return round(sum(Decimal(str(s.value)) for m in metrics.spend.collect() if m.name == "llm_cost_usd"
                     for s in m.samples) * 10**12)


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def tables(store: Any) -> dict[str, tuple[int, int]]:
    """(requests, cost in pico-USD) of llm_spans and both rollups."""
    out = {}
    for table, count in (("llm_spans", "count()"), ("llm_spend_hourly", "sum(requests)"),
                         ("llm_spend_daily", "sum(requests)")):
        n, cost = store.query(f"SELECT {count}, toString(sum(cost_usd)) FROM {table}").result_rows[0]
        out[table] = (int(n), int(Decimal(cost) * 10**12))
    return out


@pytest.mark.timeout(120)
def test_spans_on_the_topic_twice_are_stored_and_counted_once(kafka_settings: Settings, store: Any) -> None:
    """The same Export accepted twice by the receiver (two copies on the topic, at other offsets) is one row
    per span, in the rollups once, and counted once in the consumer's spend metrics."""
    request = make_request([make_span(genai_attributes("gpt-4o")) for _ in range(30)], {"tenant.id": "acme"})
    receiver = Receiver(kafka_settings, Metrics())
    receiver.start()
    consumed = Metrics()
    consumer = Consumer(kafka_settings, consumed, serve_http=False)
    consumer.start()
    try:
        export(receiver.grpc_port, request)
        export(receiver.grpc_port, request)
        export(receiver.grpc_port, make_request([make_span(genai_attributes("gpt-4o")) for _ in range(3)]))
        wait_for(lambda: consumed.rows_written._value.get() + consumed.spans_deduplicated._value.get() >= 63)
    finally:
        receiver.stop()
        consumer.stop()
    assert consumed.spans_deduplicated._value.get() == 30
    assert consumed.rows_written._value.get() == 33
    assert spend_pusd(consumed) == 33 * COST_PUSD
    assert spend_pusd(receiver.metrics) == 0  # receivers do not count spend: only what is stored counts
    assert tables(store) == {t: (33, 33 * COST_PUSD) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}


@pytest.mark.timeout(120)
def test_the_same_spans_through_both_ingest_paths_count_once(kafka_settings: Settings, store: Any) -> None:
    """Spans sent to the all-in-one service and to a Kafka receiver writing the same store are stored once, and
    the two processes' spend metrics add up to them once."""
    request = make_request([make_span(genai_attributes("gpt-4o")) for _ in range(20)], {"tenant.id": "acme"})
    direct_metrics, consumed = Metrics(), Metrics()
    direct = AllInOne(kafka_settings.replace(kafka_bootstrap="", ack="stored"), direct_metrics)
    direct.start()
    receiver = Receiver(kafka_settings, Metrics())
    receiver.start()
    consumer = Consumer(kafka_settings, consumed, serve_http=False)
    consumer.start()
    try:
        export(direct.grpc_port, request)  # --ack stored: in the table when this returns
        export(receiver.grpc_port, request)
        wait_for(lambda: consumed.rows_written._value.get() + consumed.spans_deduplicated._value.get() >= 20)
        export(direct.grpc_port, request)
    finally:
        receiver.stop()
        consumer.stop()
        direct.stop()
    assert consumed.spans_deduplicated._value.get() == 20
    assert direct_metrics.spans_deduplicated._value.get() == 20
    assert spend_pusd(direct_metrics) + spend_pusd(consumed) == 20 * COST_PUSD
    assert tables(store) == {t: (20, 20 * COST_PUSD) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}
