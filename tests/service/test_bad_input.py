"""Hostile and broken input gets a clear gRPC answer; the service keeps serving and loses nothing accepted."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

TOKEN = "s3cret-token"
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> ServiceProcess:
    svc = ServiceProcess(tmp_path_factory.mktemp("bad-input"), "--auth-token", TOKEN,
                         "--max-message-bytes", str(1024 * 1024)).start()
    yield svc
    if svc.proc.poll() is None:
        svc.stop()


@pytest.fixture(scope="module")
def export(service):
    """Send raw bytes to Export with the right token unless told otherwise; returns the response or raises."""
    channel = grpc.insecure_channel(service.endpoint)
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)

    def send(payload: bytes, token: str | None = TOKEN) -> ExportTraceServiceResponse:
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
        raw = call(payload, metadata=metadata, timeout=30, compression=grpc.Compression.Gzip)
        return ExportTraceServiceResponse.FromString(raw)

    yield send
    channel.close()


def good_spans(n: int, model: str = "gpt-4o-mini") -> bytes:
    return make_request([make_span(genai_attributes(model)) for _ in range(n)]).SerializeToString()


def status_of(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()  # type: ignore[attr-defined]


def test_wrong_or_missing_token_is_unauthenticated(export) -> None:
    """A wrong or missing bearer token gets UNAUTHENTICATED."""
    for token in ("wrong", None):
        with pytest.raises(grpc.RpcError) as info:
            export(good_spans(1), token=token)
        assert status_of(info) == grpc.StatusCode.UNAUTHENTICATED


def test_malformed_protobuf_is_invalid_argument(export) -> None:
    """Bytes that are not an ExportTraceServiceRequest get INVALID_ARGUMENT naming the problem."""
    with pytest.raises(grpc.RpcError) as info:
        export(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert status_of(info) == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed ExportTraceServiceRequest" in info.value.details()


def test_invalid_utf8_is_invalid_argument(export) -> None:
    """A string field holding invalid UTF-8 gets INVALID_ARGUMENT, not a crash."""
    payload = make_request([make_span({**genai_attributes(), "note": "MARKER"})]).SerializeToString()
    payload = payload.replace(b"MARKER", b"\xff\xfe\xfd\xfc\xfb\xfa")
    with pytest.raises(grpc.RpcError) as info:
        export(payload)
    assert status_of(info) == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_token_counts_are_partial_success(export) -> None:
    """Negative and fractional token counts reject just those spans, reported in partial_success."""
    bad1 = make_span({**genai_attributes(), "gen_ai.usage.input_tokens": -5})
    bad2 = make_span({**genai_attributes(), "gen_ai.usage.output_tokens": 2.5})
    good = make_span(genai_attributes())
    response = export(make_request([bad1, good, bad2]).SerializeToString())
    assert response.partial_success.rejected_spans == 2
    assert "invalid_token_count" in response.partial_success.error_message


def test_ten_thousand_attributes_are_truncated_not_fatal(export) -> None:
    """A span with 10,000 attributes is priced and stored with its attributes truncated, and says so."""
    attrs = {f"junk.{i}": "x" for i in range(10_000)}
    attrs.update(genai_attributes("gpt-4o-mini"))
    response = export(make_request([make_span(attrs, name="huge")]).SerializeToString())
    assert response.partial_success.rejected_spans == 0
    assert "truncated" in response.partial_success.error_message


def test_message_over_the_limit_is_resource_exhausted(export) -> None:
    """A request over --max-message-bytes gets RESOURCE_EXHAUSTED."""
    huge = make_request([make_span({**genai_attributes(), "blob": "y" * (2 * 1024 * 1024)})])
    with pytest.raises(grpc.RpcError) as info:
        export(huge.SerializeToString())
    assert status_of(info) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_service_kept_serving_and_lost_nothing(service, export) -> None:
    """After all the bad input, good spans are still accepted and every accepted span is stored."""
    assert export(good_spans(25, model="gpt-4o")).partial_success.rejected_spans == 0
    metrics = service.metrics(TOKEN)
    assert 'llm_pipeline_exports_total{code="UNAUTHENTICATED"} 2.0' in metrics
    assert service.stop() == 0
    rows = service.sql("SELECT span_name, request_model, count() AS n, length(any(attributes)) AS attrs "
                       "FROM llm_spans GROUP BY span_name, request_model ORDER BY span_name, request_model")
    by = {(r["span_name"], r["request_model"]): r for r in rows}
    assert by[("chat", "gpt-4o")]["n"] == 25
    assert by[("huge", "gpt-4o-mini")]["n"] == 1 and by[("huge", "gpt-4o-mini")]["attrs"] == 1024
    assert by[("chat", "gpt-4o-mini")]["n"] == 1  # the good neighbour of the two bad spans
