"""Lifecycle of ``run``: back-pressure when the queue is full, and SIGTERM flushing every accepted span."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import genai_attributes, make_request, make_span


def send(stub, n: int, model: str = "gpt-4o-mini"):
    return stub.Export(make_request([make_span(genai_attributes(model)) for _ in range(n)]), timeout=30)


def test_full_queue_answers_unavailable_and_sigterm_flushes(service_factory) -> None:
    """With a full queue Export gets UNAVAILABLE; on SIGTERM exactly the accepted spans are written."""
    svc = service_factory("--queue-capacity", "1000", "--batch-size", "1000", "--batch-age-seconds", "120")
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
    accepted = refused = 0
    for _ in range(4):
        try:
            send(stub, 400)
            accepted += 400
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry later" in exc.details()
            refused += 400
    assert (accepted, refused) == (800, 800)
    assert "llm_pipeline_queue_depth 800.0" in svc.metrics()
    assert svc.stop() == 0  # the batch was 120 s from its age limit: only the drain can have written it
    assert svc.sql("SELECT count() AS n FROM llm_spans") == [{"n": 800}]


def test_report_groups_spend(service_factory) -> None:
    """``report --by model --format json`` lists each model's exact spend, most expensive first."""
    svc = service_factory()
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
    send(stub, 10, "gpt-4o")
    send(stub, 10, "gpt-4o-mini")
    assert svc.stop() == 0
    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "report", "--by", "model", "--format",
                          "json", "--data-dir", svc.data_dir], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["model"] for r in rows] == ["gpt-4o", "gpt-4o-mini"]
    # 10 spans x (1000 input, 200 output): gpt-4o $2.50/$10 per M, gpt-4o-mini $0.15/$0.60 per M
    assert [r["cost_usd"] for r in rows] == ["0.045", "0.0027"]
    table = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "report", "--data-dir", svc.data_dir],
                           capture_output=True, text=True, timeout=120)
    assert "gpt-4o-mini" in table.stdout and "(2 rows)" in table.stdout
