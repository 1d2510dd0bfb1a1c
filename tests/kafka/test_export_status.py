"""How the OTLP handler answers when the Kafka publisher refuses or fails a request."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_grpc import OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from llm_cost_tracker.types import QueueBusy, QueueUnavailable, SpanRecord

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _Refusing:
    def __init__(self, exc: Exception, in_future: bool = False) -> None:
        self.exc = exc
        self.in_future = in_future

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None, columns: object = None) -> Future[None]:
        if not self.in_future:
            raise self.exc
        future: Future[None] = Future()
        future.set_exception(self.exc)
        return future

    def close(self) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[OtlpGrpcServer] = []

    def start(publisher: object) -> grpc.UnaryUnaryMultiCallable:
        handler = TraceExportHandler([], publisher, DecodeLimits(64, 4096, "tenant.id"), Metrics())  # type: ignore[arg-type]
        server = OtlpGrpcServer("127.0.0.1:0", handler, 1 << 20, 2)
        server.start()
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        return channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                   response_deserializer=lambda b: b)

    yield start
    for server in servers:
        server.stop(0)


def _request() -> ExportTraceServiceRequest:
    return make_request([make_span(genai_attributes())])


def test_busy_publisher_gives_resource_exhausted_with_retry_info(serve) -> None:
    """QueueBusy becomes RESOURCE_EXHAUSTED carrying RetryInfo in grpc-status-details-bin and retryinfo-bin."""
    export = serve(_Refusing(QueueBusy("100 of 100 records in flight", retry_after_seconds=1.5)))
    with pytest.raises(grpc.RpcError) as info:
        export(_request(), timeout=5)
    error = info.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 500_000_000)
    assert error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]) == retry


@pytest.mark.parametrize("in_future", [False, True])
def test_unreachable_backend_gives_unavailable(serve, in_future: bool) -> None:
    """QueueUnavailable, raised at publish or through the ack future, becomes UNAVAILABLE."""
    export = serve(_Refusing(QueueUnavailable("broker unreachable"), in_future=in_future))
    with pytest.raises(grpc.RpcError) as info:
        export(_request(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "broker unreachable" in info.value.details()
