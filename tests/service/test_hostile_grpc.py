"""The gRPC port beside clients that open streams and never send: Exports are still served, /readyz tells saturation."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import genai_attributes, make_request, make_span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "hostile-test-token"


def stalled_calls(channel: grpc.Channel, n: int, release: threading.Event, token: str | None) -> list[grpc.Future]:
    """``n`` Export streams that send headers and no message until ``release`` is set."""

    def never() -> Iterator[bytes]:
        release.wait()
        return
        yield b""

    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    call = channel.stream_unary(METHOD)
    return [call.future(never(), timeout=120, metadata=metadata) for _ in range(n)]


def export(channel: grpc.Channel) -> None:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    stub.Export(make_request([make_span(genai_attributes())]), timeout=20,
                metadata=(("authorization", f"Bearer {TOKEN}"),))


def readyz(svc) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(svc.http_url + "/readyz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_token_less_stalled_streams_are_refused_at_once_and_exports_go_on(service_factory) -> None:
    """70 token-less streams that never send end UNAUTHENTICATED without holding a thread; a real Export is served."""
    svc = service_factory("--auth-token", TOKEN)
    release = threading.Event()
    with grpc.insecure_channel(svc.endpoint) as hostile, grpc.insecure_channel(svc.endpoint) as good:
        try:
            calls = stalled_calls(hostile, 70, release, token=None)
            codes = {call.exception(timeout=60).code() for call in calls}
            export(good)
        finally:
            release.set()
    assert codes == {grpc.StatusCode.UNAUTHENTICATED}
    assert readyz(svc)[0] == 200


def test_authenticated_stalled_streams_are_cancelled_and_do_not_starve_exports(service_factory) -> None:
    """Eight streams with a valid token and no message do not hold the decoders; they are cancelled, not left to their deadline."""
    svc = service_factory("--auth-token", TOKEN, env={"LCT_GRPC_RECEIVE_TIMEOUT_SECONDS": "2"})
    release = threading.Event()
    with grpc.insecure_channel(svc.endpoint) as hostile, grpc.insecure_channel(svc.endpoint) as good:
        try:
            calls = stalled_calls(hostile, 8, release, token=TOKEN)
            for _ in range(3):
                export(good)
            codes = {call.exception(timeout=60).code() for call in calls}
        finally:
            release.set()
    assert codes == {grpc.StatusCode.CANCELLED}  # the server gave up waiting, well before the 120 s deadline


def test_readyz_reports_a_saturated_grpc_port(service_factory) -> None:
    """With every stream slot held, /readyz answers 503 naming the stream limit; once they end it is 200 again."""
    svc = service_factory("--auth-token", TOKEN, env={"LCT_GRPC_MAX_STREAMS": "4",
                                                      "LCT_GRPC_RECEIVE_TIMEOUT_SECONDS": "60"})
    release = threading.Event()
    with grpc.insecure_channel(svc.endpoint) as hostile:
        calls = stalled_calls(hostile, 4, release, token=TOKEN)
        try:
            status, body = readyz(svc)
            for _ in range(100):
                if status == 503:
                    break
                threading.Event().wait(0.1)
                status, body = readyz(svc)
        finally:
            release.set()
        for call in calls:
            call.exception(timeout=60)
    assert status == 503 and "stream limit" in body["reason"], body
    assert readyz(svc)[0] == 200
