"""collector-config/ for priced spans in the tracing backend: shape (a) (priced.yaml over agent/gateway: each
span takes exactly one route) and shape (b) (gateway-all.yaml), and both shapes run for real with rotel in
front of ``llm-cost-tracker run --forward-otlp`` and a real next hop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.forward.spans import COST_USD
from tests.deploy.conftest import COLLECTOR
from tests.deploy.test_collector import (
    DETECTOR_KEYS,
    ENDPOINT,
    OUR_PIPELINE,
    documented_variables,
    load,
    merge,
)


def keep_condition_keys(config: dict[str, Any]) -> set[str]:
    """The keys of filter/not-llm's drop condition, which must be a plain `A != nil or B != nil ...`."""
    (condition,) = config["processors"]["filter/not-llm"]["traces"]["span"]
    keys = set()
    for term in (t.strip() for t in condition.split(" or ")):
        match = re.fullmatch(r'attributes\["([^"]+)"\] != nil', term)
        assert match, f"unexpected OTTL term {term!r}"
        keys.add(match.group(1))
    return keys


def holds_together(config: dict[str, Any]) -> None:
    service = config["service"]
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} is used but not defined"
    for extension in service["extensions"]:
        assert extension in config["extensions"]


@pytest.mark.parametrize("name", ["agent.yaml", "gateway.yaml"])
def test_priced_overlay_sends_each_span_one_way(name: str) -> None:
    """With priced.yaml merged, an LLM span goes only to llm-cost-tracker and any other span only to the backend."""
    from llm_cost_tracker import testing

    config = merge(load(name), load("priced.yaml"))
    holds_together(config)
    assert keep_condition_keys(config) == DETECTOR_KEYS
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces/backend"]["processors"] == ["memory_limiter", "filter/not-llm", "batch"]
    assert "filter/llm-cost-tracker" in pipelines[OUR_PIPELINE]["processors"]
    for attrs in (testing.genai_attributes(), testing.legacy_attributes(), testing.openinference_attributes(),
                  {"http.request.method": "GET"}):
        to_backend = not any(k in attrs for k in DETECTOR_KEYS)
        to_us = any(k in attrs for k in DETECTOR_KEYS)
        assert to_backend != to_us, attrs


def test_gateway_all_sends_every_span_to_us_only() -> None:
    config = load("gateway-all.yaml")
    holds_together(config)
    ((name, pipeline),) = config["service"]["pipelines"].items()
    assert name == OUR_PIPELINE and pipeline["processors"] == ["memory_limiter", "batch"]
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"] == ENDPOINT
    assert config["exporters"][exporter]["retry_on_failure"]["max_elapsed_time"] == "0s"
    text = (COLLECTOR / "gateway-all.yaml").read_text() + (COLLECTOR / "priced.yaml").read_text()
    assert set(re.findall(r"\$\{env:([A-Z_]+)\}", text)) <= documented_variables()
    assert yaml.safe_load((COLLECTOR / "priced.yaml").read_text())["service"]["pipelines"].keys() == {"traces/backend"}


@pytest.mark.parametrize("shape", ["a-llm-spans-grpc", "b-all-spans-http"])
def test_rotel_shapes_deliver_priced_spans_to_the_next_hop(shape: str, tmp_path: Path) -> None:
    """rotel -> llm-cost-tracker (gRPC with the LLM-span processor, or OTLP/HTTP with every span) -> next hop."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from llm_cost_tracker.testing import (
        ServiceProcess,
        free_port,
        genai_attributes,
        rotel_agent_path,
        wait_listening,
    )

    gateway = shape.startswith("b")
    received: list[Any] = []

    def export(request: ExportTraceServiceRequest, _context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        received.extend(span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans)
        return ExportTraceServiceResponse()

    hop = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    hop.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString)}),))
    hop_port = hop.add_insecure_port("127.0.0.1:0")
    hop.start()
    token = "t0ken-for-the-forwarding-test"
    svc = ServiceProcess(tmp_path / "store", "--auth-token", token, "--forward-otlp", f"grpc://127.0.0.1:{hop_port}",
                         *(["--forward-all"] if gateway else [])).start()
    grpc_port, http_port = free_port(), free_port()
    target = ["--otlp-exporter-endpoint", f"http://127.0.0.1:{svc.otlp_http_port}", "--otlp-exporter-protocol", "http"] \
        if gateway else ["--otlp-exporter-endpoint", f"http://{svc.endpoint}", "--otlp-exporter-protocol", "grpc",
                         "--otlp-with-trace-processor", str(COLLECTOR / "rotel" / "genai_only.py")]
    argv = [rotel_agent_path(), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}", "--otlp-http-endpoint",
            f"127.0.0.1:{http_port}", "--exporter", "otlp", *target, "--otlp-exporter-compression", "gzip",
            "--otlp-exporter-custom-headers", f"authorization=Bearer {token}",
            "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROTEL_"))}
    rotel = None
    try:
        with open(tmp_path / "rotel.out", "wb") as rotel_out:
            rotel = subprocess.Popen(argv, env=env, stdout=rotel_out, stderr=subprocess.STDOUT)
        wait_listening(grpc_port, rotel)  # rotel accepts spans (or has exited: asserted next)
        assert rotel.poll() is None, (tmp_path / "rotel.out").read_text()
        provider = TracerProvider(resource=Resource.create({"service.name": "behind-rotel"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}",
                                                                        insecure=True), max_queue_size=10_000))
        tracer = provider.get_tracer("forward-test")
        for i in range(100):
            with tracer.start_as_current_span("chat", attributes=genai_attributes(input_tokens=100 + i)):
                pass
            with tracer.start_as_current_span("GET /health", attributes={"http.request.method": "GET"}):
                pass
        assert provider.force_flush(30_000)
        provider.shutdown()
        expected = 200 if gateway else 100
        deadline = time.monotonic() + 90
        while len(received) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if rotel is not None:
            rotel.send_signal(signal.SIGTERM)
            rotel.wait(20)
        code = svc.stop()
        hop.stop(0)
    assert code == 0, svc.log()
    llm = [s for s in received if s.name == "chat"]
    other = [s for s in received if s.name != "chat"]
    assert len(llm) == 100 and len({s.span_id for s in llm}) == 100, (len(received), (tmp_path / "rotel.out").read_text())
    assert len(other) == (100 if gateway else 0)
    stored = {r["span_id"]: r["cost"] for r in svc.sql("SELECT span_id, toString(cost_usd) AS cost FROM llm_spans")}
    for span in llm:
        attrs = {kv.key: kv.value.string_value for kv in span.attributes}
        assert attrs[COST_USD] == stored[span.span_id.hex()].rstrip("0").rstrip(".")
    assert all(not any(kv.key == COST_USD for kv in s.attributes) for s in other)
