"""A real collector hop: OTel SDK -> rotel (Rust OTel collector) -> ``run`` -> chDB."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_cost_tracker.testing import free_port, genai_attributes, rotel_command, wait_listening


def test_rotel_delivers_every_span(service_factory, tmp_path) -> None:
    """Every LLM span sent through rotel arrives in the table exactly once."""
    svc = service_factory()
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    rotel = subprocess.Popen(rotel_command(svc.endpoint, grpc_port, http_port, str(tmp_path)), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_listening(grpc_port, rotel)  # rotel accepts spans (or has exited: asserted next)
        assert rotel.poll() is None, (tmp_path / "rotel.log").read_text() if (tmp_path / "rotel.log").exists() else ""
        provider = TracerProvider(resource=Resource.create({"service.name": "via-rotel"}))
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True), max_queue_size=10_000))
        tracer = provider.get_tracer("rotel-test")
        for i in range(2000):
            with tracer.start_as_current_span("chat", attributes=genai_attributes(input_tokens=100 + i)):
                pass
        assert provider.force_flush(30_000)
        provider.shutdown()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and 'llm_pipeline_spans_received_total{kind="llm"} 2000.0' not in svc.metrics():
            time.sleep(0.2)
    finally:
        rotel.send_signal(signal.SIGTERM)
        rotel.wait(20)
    assert svc.stop() == 0
    (row,) = svc.sql("SELECT count() AS n, uniqExact(span_id) AS uniq, sum(input_tokens) AS tokens, "
                     "any(service_name) AS service FROM llm_spans")
    assert (row["n"], row["uniq"]) == (2000, 2000)
    assert row["tokens"] == sum(100 + i for i in range(2000))
    assert row["service"] == "via-rotel"
