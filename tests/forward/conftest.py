"""Next hops for the forwarding tests: a real OTLP/gRPC server and a real OTLP/HTTP server that record
what they receive, and can be made to fail (UNAVAILABLE / 503) and recover."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class NextHop:
    """What the next hop received, span by span id; ``failing`` answers UNAVAILABLE (gRPC) or 503 (HTTP)."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[Span, dict[str, str]]]] = {}
        self.failing = False
        self.refused = 0
        self.refused_once = threading.Event()
        """Set on the first refusal: the sender has tried this hop at least once."""
        self.lock = threading.Lock()

    def take(self, request: ExportTraceServiceRequest) -> bool:
        with self.lock:
            if self.failing:
                self.refused += 1
                self.refused_once.set()
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


def span_ids(request: ExportTraceServiceRequest) -> set[str]:
    return {s.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
