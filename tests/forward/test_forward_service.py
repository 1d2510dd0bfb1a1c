"""Forwarding through the real service to a real next hop: every stored LLM span arrives once, with its
exact stored cost, whichever protocol brought it in; a next hop that fails and recovers loses nothing."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llm_cost_tracker.forward.spans import COST_USD, PRICE_VERSION, PRICING_STATUS, TOTAL
from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span, otlp_json

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class NextHop:
    """What the next hop received, span by span id; ``failing`` answers UNAVAILABLE (gRPC) or 503 (HTTP)."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[Span, dict[str, str]]]] = {}
        self.failing = False
        self.refused = 0
        self.lock = threading.Lock()

    def take(self, request: ExportTraceServiceRequest) -> bool:
        with self.lock:
            if self.failing:
                self.refused += 1
                return False
            for resource_spans in request.resource_spans:
                resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.setdefault(span.span_id.hex(), []).append((span, resource))
            return True

    def wait_for(self, span_ids: set[str], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not span_ids <= set(self.spans) and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def grpc_hop() -> Iterator[tuple[NextHop, int]]:
    hop = NextHop()

    def export(request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        if not hop.take(request):
            context.abort(grpc.StatusCode.UNAVAILABLE, "next hop down for the test")
        return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(export, request_deserializer=ExportTraceServiceRequest.FromString,
                                                  response_serializer=ExportTraceServiceResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield hop, port
    server.stop(0)


@pytest.fixture
def http_hop() -> Iterator[tuple[NextHop, int]]:
    hop = NextHop()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            ok = self.path == "/v1/traces" and self.headers.get("x-hop-token") == "s3cret" \
                and hop.take(ExportTraceServiceRequest.FromString(body))
            answer = ExportTraceServiceResponse().SerializeToString() if ok else b""
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hop, server.server_address[1]
    server.shutdown()


def attributes(span: Span) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def llm_request(service: str, n: int, model: str = "gpt-4o-mini") -> ExportTraceServiceRequest:
    spans = [make_span(genai_attributes(model=model, input_tokens=1000 + i, output_tokens=200, cache_read=100))
             for i in range(n)]
    return make_request(spans, {"service.name": service})


def span_ids(request: ExportTraceServiceRequest) -> set[str]:
    return {s.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}


def stored_costs(service: ServiceProcess, name: str, expected: int) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        rows = service.sql(f"SELECT span_id, toString(cost_usd) AS cost, price_version, pricing_status "
                           f"FROM llm_spans WHERE service_name = '{name}'")
        if len(rows) >= expected or time.monotonic() > deadline:
            return {r["span_id"]: r for r in rows}
        time.sleep(0.5)


def export_until_accepted(stub: Any, request: ExportTraceServiceRequest) -> int:
    """Send like a collector: retry UNAVAILABLE until accepted; return how many times it was refused."""
    refused = 0
    for _ in range(600):
        try:
            stub.Export(request, timeout=30)
            return refused
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            refused += 1
            time.sleep(0.1)
    raise AssertionError("never accepted")


def test_stored_spans_reach_a_grpc_next_hop_once_with_their_exact_cost(grpc_hop: tuple[NextHop, int],
                                                                        tmp_path: Path) -> None:
    hop, port = grpc_hop
    svc = ServiceProcess(tmp_path / "store", "--forward-otlp", f"grpc://127.0.0.1:{port}").start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
        over_grpc, over_http = llm_request("fwd", 5), llm_request("fwd", 4)
        unknown = llm_request("fwd", 1, model="no-such-model-xyz")
        other = make_request([make_span({"http.method": "GET"})], {"service.name": "fwd"})
        stub.Export(over_grpc, timeout=30)
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(svc.otlp_http_url, data=otlp_json(over_http), method="POST",
                                                      headers={"Content-Type": "application/json"}), timeout=30)
        stub.Export(unknown, timeout=30)
        stub.Export(other, timeout=30)
        expected = span_ids(over_grpc) | span_ids(over_http) | span_ids(unknown)
        hop.wait_for(expected)
        stub.Export(over_grpc, timeout=30)  # a collector's retry: stored once, so forwarded once
        marker = llm_request("fwd-marker", 1)
        stub.Export(marker, timeout=30)
        hop.wait_for(span_ids(marker))
        stored = stored_costs(svc, "fwd", 10)
        assert svc.stop() == 0, svc.log()
    finally:
        if svc.proc.poll() is None:
            svc.kill()
    assert set(hop.spans) == expected | span_ids(marker)  # the other span is not forwarded without --forward-all
    assert all(len(copies) == 1 for copies in hop.spans.values())
    for span_id in expected:
        (span, resource), = hop.spans[span_id]
        a, row = attributes(span), stored[span_id]
        assert resource["service.name"] == "fwd"
        assert a[PRICING_STATUS] == row["pricing_status"] and a.get(PRICE_VERSION, "") == row["price_version"]
        if row["pricing_status"] == "unpriced":
            assert COST_USD not in a and TOTAL not in a
        else:
            assert Decimal(a[COST_USD]) == Decimal(row["cost"]) and a[COST_USD] == str(Decimal(row["cost"]).normalize())
            assert a[TOTAL] == float(Decimal(row["cost"]))
            assert a["llm.cost.prompt"] + a["llm.cost.completion"] == pytest.approx(a[TOTAL])


def test_a_failing_next_hop_loses_nothing_and_pushes_back_on_ingest(grpc_hop: tuple[NextHop, int],
                                                                    tmp_path: Path) -> None:
    hop, port = grpc_hop
    hop.failing = True
    svc = ServiceProcess(tmp_path / "store", "--forward-otlp", f"grpc://127.0.0.1:{port}",
                         env={"LCT_FORWARD_QUEUE_SPANS": "20", "LCT_FORWARD_RETRY_MAX_SECONDS": "0.5"}).start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
        sent: set[str] = set()
        refused_at = None
        for _ in range(40):  # the forwarding queue (20 spans) fills, then the writer waits, then ingest refuses
            request = llm_request("down", 8)
            try:
                stub.Export(request, timeout=30)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                refused_at = request
                break
            sent |= span_ids(request)
            time.sleep(0.2)
        assert refused_at is not None, "ingest never pushed back while the next hop was down"
        assert hop.refused > 0 and not hop.spans
        hop.failing = False  # the next hop recovers; the collector retries what was refused
        export_until_accepted(stub, refused_at)
        sent |= span_ids(refused_at)
        hop.wait_for(sent)
        metrics = svc.metrics()
        assert svc.stop() == 0, svc.log()
    finally:
        if svc.proc.poll() is None:
            svc.kill()
    assert set(hop.spans) == sent and all(len(c) == 1 for c in hop.spans.values())
    retries = next(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("llm_forward_retries_total"))
    assert retries > 0
    assert f"llm_forward_spans_forwarded_total {float(len(sent))}" in metrics


def test_forward_all_over_http_passes_other_spans_untouched_and_drains_on_sigterm(
        http_hop: tuple[NextHop, int], tmp_path: Path) -> None:
    hop, port = http_hop
    svc = ServiceProcess(tmp_path / "store", "--forward-otlp", f"http://127.0.0.1:{port}/v1/traces", "--forward-all",
                         env={"LCT_FORWARD_HEADERS": "x-hop-token=s3cret"}).start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
        other = make_span({"http.method": "GET", "http.url": "https://example.com/x?api_key=sk-abcdefghijklmnop123456"},
                          name="GET /x")
        mixed = make_request([other, *llm_request("gw", 3).resource_spans[0].scope_spans[0].spans],
                             {"service.name": "gw"})
        stub.Export(mixed, timeout=30)
        hop.wait_for(span_ids(mixed))
        hop.failing = True  # down at shutdown: what is queued waits for it until the deadline
        late = llm_request("gw", 2)
        stub.Export(late, timeout=30)
        stored_costs(svc, "gw", 5)  # stored, so handed to the forwarder
        threading.Timer(3.0, lambda: setattr(hop, "failing", False)).start()
        assert svc.stop() == 0, svc.log()  # SIGTERM: drains the queue once the next hop is back
    finally:
        if svc.proc.poll() is None:
            svc.kill()
    assert set(hop.spans) == span_ids(mixed) | span_ids(late)
    (passed, resource), = hop.spans[other.span_id.hex()]
    assert passed == other and resource["service.name"] == "gw"  # untouched: byte for byte the span sent
    for span_id in span_ids(mixed) - {other.span_id.hex()}:
        assert COST_USD in attributes(hop.spans[span_id][0][0])
