"""Forwarding in the Kafka deployment: the consumer forwards what it stored, the receiver passes the other
spans through (``--forward-all``); here both halves run in one process (``run --kafka-bootstrap``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.forward.spans import COST_USD
from llm_cost_tracker.queue.kafka_testing import KafkaProcess, sql
from llm_cost_tracker.testing import genai_attributes, make_request, make_span

from .conftest import NextHop, attributes, span_ids


@pytest.mark.timeout(180)
def test_the_consumer_forwards_stored_spans_and_the_receiver_the_others(tansu: Any, tmp_path: Any,
                                                                       grpc_hop: tuple[NextHop, int]) -> None:
    hop, port = grpc_hop
    service = KafkaProcess("run", tmp_path / "run", "--kafka-bootstrap", tansu.bootstrap, "--no-kafka-idempotence",
                           "--kafka-compression", "gzip", "--kafka-session-timeout-ms", "1000",
                           "--kafka-heartbeat-interval-ms", "200", "--batch-age-seconds", "0.3",
                           "--forward-otlp", f"grpc://127.0.0.1:{port}", "--forward-all").start()
    try:
        other = make_span({"db.system": "postgresql"}, name="SELECT")
        llm = [make_span(genai_attributes(input_tokens=100 + i)) for i in range(6)]
        request = make_request([other, *llm], {"service.name": "kafka-fwd"})
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        stub.Export(request, timeout=30)
        hop.wait_for(span_ids(request))
        assert service.stop() == 0, service.log()
    finally:
        service.kill()
    assert set(hop.spans) == span_ids(request) and all(len(c) == 1 for c in hop.spans.values())
    assert hop.spans[other.span_id.hex()][0][0] == other
    stored = {r["span_id"]: Decimal(r["cost"]) for r in sql(
        service.data_dir, "SELECT span_id, toString(cost_usd) AS cost FROM llm_spans")}
    assert set(stored) == {s.span_id.hex() for s in llm}
    for span_id, cost in stored.items():
        assert Decimal(attributes(hop.spans[span_id][0][0])[COST_USD]) == cost
