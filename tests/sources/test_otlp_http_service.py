"""OTLP/HTTP through the real service: the OTel SDK's HTTP exporter and raw posts, stored with exact costs
under the same tokens, tenants, rate limits and span identity as OTLP/gRPC."""

from __future__ import annotations

import gzip
import http.client
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.testing import (
    ServiceProcess,
    genai_attributes,
    http_head_only,
    make_request,
    make_span,
    otlp_json,
)

CONFIG = """
[auth]
admin_tokens = ["admin-token"]
[[auth.tenants]]
name = "acme"
tokens = ["acme-token"]
[[auth.tenants]]
name = "tiny"
tokens = ["tiny-token"]
spans_per_second = 1
burst_seconds = 5
"""
PROTOBUF, JSON = "application/x-protobuf", "application/json"
COST = Decimal("0.000285")
"""gpt-4o-mini, 1,200 input tokens of which 1,000 cached, 300 output (the README's example)."""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home = tmp_path_factory.mktemp("otlp-http")
    config = home / "lct.toml"
    config.write_text(CONFIG)
    svc = ServiceProcess(home / "store", "--max-message-bytes", str(1 << 20), env={"LCT_CONFIG": str(config)}).start()
    yield svc
    assert svc.stop() == 0, svc.log()


def post(service: ServiceProcess, body: bytes, content_type: str = PROTOBUF,
         headers: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", service.otlp_http_port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/traces")
        for name, value in [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])]:
            connection.putheader(name, value)  # repeated fields stay repeated
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def request(service_name: str, n: int = 3, trace_id: bytes | None = None) -> ExportTraceServiceRequest:
    spans = [make_span(genai_attributes(input_tokens=1200, output_tokens=300, cache_read=1000), trace_id=trace_id)
             for _ in range(n)]
    return make_request(spans, {"service.name": service_name, "tenant.id": "from-payload"})


def rows(service: ServiceProcess, service_name: str, expected: int) -> list[dict[str, Any]]:
    """The stored rows of ``service_name``, once ``expected`` of them are there (the writer flushes each second)."""
    deadline = time.monotonic() + 60
    while True:
        found = service.sql(f"SELECT tenant, trace_id, span_id, toString(cost_usd) AS cost, pricing_status "
                            f"FROM llm_spans WHERE service_name = '{service_name}' ORDER BY span_id")
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_the_sdk_http_exporter_is_stored_with_exact_costs_under_the_token_tenant(service: ServiceProcess) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-http", "tenant.id": "spoofed"}))
    exporter = OTLPSpanExporter(endpoint=service.otlp_http_url, compression=Compression.Gzip,
                                headers={"authorization": "Bearer acme-token"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 1000}):
            pass
    provider.shutdown()
    stored = rows(service, "sdk-http", 3)
    assert [(r["tenant"], Decimal(r["cost"]), r["pricing_status"]) for r in stored] == [("acme", COST, "priced")] * 3


def test_raw_json_and_protobuf_posts_are_stored_with_the_ids_sent(service: ServiceProcess) -> None:
    sent = request("raw-json", 2)
    status, headers, body = post(service, otlp_json(sent), JSON, [*bearer("admin-token"), ("lct-tenant", "acme")])
    assert (status, headers["content-type"], body) == (200, JSON, b"{}")
    sent_pb = request("raw-protobuf", 2)
    status, _, body = post(service, gzip.compress(sent_pb.SerializeToString()), PROTOBUF,
                           [*bearer("acme-token"), ("Content-Encoding", "gzip")])
    assert (status, body) == (200, b"")
    for name, req in (("raw-json", sent), ("raw-protobuf", sent_pb)):
        spans = req.resource_spans[0].scope_spans[0].spans
        expected = sorted((s.trace_id.hex(), s.span_id.hex()) for s in spans)
        stored = rows(service, name, 2)
        assert sorted((r["trace_id"], r["span_id"]) for r in stored) == expected
        assert {(r["tenant"], Decimal(r["cost"])) for r in stored} == {("acme", COST)}


def test_the_same_spans_over_grpc_and_http_are_counted_once(service: ServiceProcess) -> None:
    sent = request("both-protocols", 4, trace_id=b"\x01" * 16)
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
    stub.Export(sent, metadata=(("authorization", "Bearer acme-token"),), timeout=30)
    assert len(rows(service, "both-protocols", 4)) == 4
    assert post(service, sent.SerializeToString(), PROTOBUF, bearer("acme-token"))[0] == 200  # a retry over HTTP
    assert post(service, otlp_json(sent), JSON, bearer("acme-token"))[0] == 200
    marker = request("after-the-copies", 1)  # written after the copies: once it is stored, they were looked at
    assert post(service, marker.SerializeToString(), PROTOBUF, bearer("acme-token"))[0] == 200
    rows(service, "after-the-copies", 1)
    assert len(rows(service, "both-protocols", 4)) == 4
    metric = 'llm_cost_usd_total{model="gpt-4o-mini",provider="openai",service="both-protocols"}'
    line = next(m for m in service.metrics("admin-token").splitlines() if m.startswith(metric))
    assert Decimal(line.split()[-1]) == 4 * COST


def _status(body: bytes, content_type: str) -> Any:
    status = status_pb2.Status()
    if content_type == JSON:
        json_format.Parse(body, status)
    else:
        status.ParseFromString(body)
    return status


def test_tokens_tenants_and_rate_limits_answer_as_over_grpc(service: ServiceProcess) -> None:
    body = request("refused", 1).SerializeToString()
    for headers in ([], bearer("nobody"), [*bearer("acme-token"), *bearer("admin-token")]):
        status, _, answer = post(service, body, PROTOBUF, headers)
        assert status == 401 and _status(answer, PROTOBUF).code == 16, headers  # UNAUTHENTICATED
    status, _, answer = post(service, otlp_json(request("refused", 1)), JSON,
                             [*bearer("admin-token"), ("lct-tenant", "acme"), ("lct-tenant", "globex")])
    assert status == 400 and "name one tenant" in _status(answer, JSON).message
    status, _, answer = post(service, request("tiny", 6).SerializeToString(), PROTOBUF, bearer("tiny-token"))
    assert status == 413 and "retry-after" not in answer.decode(errors="replace").lower()  # over the burst: never
    assert post(service, request("tiny", 5).SerializeToString(), PROTOBUF, bearer("tiny-token"))[0] == 200
    status, headers, answer = post(service, request("tiny", 5).SerializeToString(), PROTOBUF, bearer("tiny-token"))
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert "rate limited" in _status(answer, PROTOBUF).message
    metrics = service.metrics("admin-token")
    for line in ('llm_pipeline_http_exports_total{status="401"} 3.0', 'llm_pipeline_http_exports_total{status="429"} 1.0',
                 'llm_pipeline_http_exports_total{status="413"} 1.0'):
        assert line in metrics
    assert len(rows(service, "tiny", 5)) == 5
    assert not [r for r in rows(service, "refused", 0)]


def test_a_body_over_the_message_size_gets_413_whether_sent_or_inflated(service: ServiceProcess) -> None:
    status, _, answer = http_head_only(service.otlp_http_port, "/v1/traces", PROTOBUF, (1 << 20) + 1)
    assert status == 413 and _status(answer, PROTOBUF).code == 8
    bomb = gzip.compress(b"\0" * (256 << 20))  # 256 MiB inflated, 255 KiB sent
    status, _, answer = post(service, bomb, JSON, [*bearer("acme-token"), ("Content-Encoding", "gzip")])
    assert status == 413 and "inflates past 1048576 bytes" in _status(answer, JSON).message


def test_the_port_can_be_turned_off(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "store", "--otlp-http", "off").start()
    try:
        with pytest.raises(OSError):
            post(svc, b"", PROTOBUF)
    finally:
        assert svc.stop() == 0


NODE_CLIENT = Path(__file__).parent / "node"


@pytest.mark.parametrize("encoding", ["json", "proto"])
def test_the_otel_js_sdk_http_exporter_over_json_and_protobuf(service: ServiceProcess, encoding: str) -> None:
    """A non-Python client: the OTel JS SDK's OTLP/HTTP exporters, gzip on, run by node."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node.js 20+ runs the OTel JS SDK client)")
    if not (NODE_CLIENT / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-http").is_dir():
        pytest.skip(f"the OTel JS SDK is not installed: run `npm ci --prefix {NODE_CLIENT}` (make test does)")
    name = f"node-{encoding}"
    out = subprocess.run([node, str(NODE_CLIENT / "send.mjs"), service.otlp_http_url, encoding, "acme-token", name, "3"],
                         capture_output=True, text=True, timeout=120, cwd=NODE_CLIENT)
    assert out.returncode == 0, out.stderr[-2000:]
    sent = sorted(tuple(i.split(":")) for i in json.loads(out.stdout.strip().splitlines()[-1]))
    stored = rows(service, name, 3)
    assert sorted((r["trace_id"], r["span_id"]) for r in stored) == sent
    assert {(r["tenant"], Decimal(r["cost"])) for r in stored} == {("acme", COST)}
