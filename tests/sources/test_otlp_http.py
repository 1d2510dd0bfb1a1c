"""The OTLP/HTTP listener in process: one Export path with gRPC, and the spec's answers.

The listener, the Export core, the memory budget and the in-process queue are the service's own;
only the transforms are left out (every span is published as decoded, so records can be compared).
"""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.frontend import otlp_http_server
from llm_cost_tracker.httpserver import HttpLimits, HttpServer
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sources.admission import MemoryBudget
from llm_cost_tracker.sources.export import ExportCore
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_grpc import OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.sources.otlp_http import OtlpHttpHandler
from llm_cost_tracker.testing import (
    RecordingPublisher,
    genai_attributes,
    http_head_only,
    make_request,
    make_span,
    otlp_json,
)
from llm_cost_tracker.types import Publisher

PROTOBUF, JSON = "application/x-protobuf", "application/json"
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Listener:
    """An Export core behind both receivers, on 127.0.0.1."""

    def __init__(self, publisher: Publisher, memory: MemoryBudget | None = None, max_message_bytes: int = 1 << 20,
                 limits: DecodeLimits | None = None) -> None:
        self.metrics = Metrics()
        self.core = ExportCore([], publisher, limits or DecodeLimits(), self.metrics, memory=memory, memory_wait=0.2)
        self.handler = OtlpHttpHandler(self.core, max_message_bytes, self.metrics.http_exports)
        self.http: HttpServer = otlp_http_server(
            "127.0.0.1:0", self.handler, HttpLimits(max_body_bytes=max_message_bytes, workers=2, decompress=False))
        self.http.start()
        self.grpc = OtlpGrpcServer("127.0.0.1:0", TraceExportHandler(core=self.core), max_message_bytes, 2)
        self.grpc.start()

    def post(self, body: bytes, content_type: str = PROTOBUF, path: str = "/v1/traces", method: str = "POST",
             **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.http.port, timeout=30)
        try:
            fields = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
            connection.request(method, path, body=body, headers=fields)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def grpc_export(self, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc.port}") as channel:
            export = channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                         response_deserializer=ExportTraceServiceResponse.FromString)
            return export(request, timeout=10)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.http.stop()
        self.grpc.stop(0)


@pytest.fixture
def recording() -> Iterator[tuple[Listener, RecordingPublisher]]:
    publisher = RecordingPublisher()
    listener = Listener(publisher)
    yield listener, publisher
    listener.close()


def _request(n: int = 3, **resource: str) -> ExportTraceServiceRequest:
    spans = [make_span(genai_attributes(model="gpt-4o-mini", input_tokens=100 + i)) for i in range(n)]
    return make_request(spans, {"service.name": "chatbot", **resource})


def _status(body: bytes, content_type: str) -> Any:
    status = status_pb2.Status()
    if content_type == JSON:
        json_format.Parse(body, status)
    else:
        status.ParseFromString(body)
    return status


def test_protobuf_json_gzip_and_grpc_publish_the_same_records(recording: tuple[Listener, RecordingPublisher]) -> None:
    listener, publisher = recording
    request = _request(tenant_id="acme")
    listener.grpc_export(request)
    answers = [listener.post(request.SerializeToString()),
               listener.post(otlp_json(request), JSON),
               listener.post(gzip.compress(request.SerializeToString()), PROTOBUF, content_encoding="gzip"),
               listener.post(gzip.compress(otlp_json(request)), JSON, content_encoding="gzip")]
    assert [status for status, _, _ in answers] == [200, 200, 200, 200]
    assert answers[0][2] == b"" and json.loads(answers[1][2]) == {}  # an empty ExportTraceServiceResponse
    assert answers[0][1]["content-type"] == PROTOBUF and answers[1][1]["content-type"] == JSON
    per_export = [publisher.records[i:i + 3] for i in range(0, 15, 3)]
    assert len(publisher.records) == 15
    first = [asdict(r) for r in per_export[0]]
    assert all([asdict(r) for r in copy] == first for copy in per_export[1:])
    assert listener.metrics.exports.labels(code="OK")._value.get() == 5
    assert listener.metrics.http_exports.labels(status="200")._value.get() == 4


def test_partial_success_comes_back_in_the_request_encoding(recording: tuple[Listener, RecordingPublisher]) -> None:
    listener, _ = recording
    request = _request(1)
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"short"
    status, _, body = listener.post(request.SerializeToString())
    assert status == 200
    assert ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans == 1
    status, _, body = listener.post(otlp_json(request), JSON)
    assert status == 200
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"  # int64 as a string (protobuf JSON)


def test_refusals_get_the_spec_status_and_a_status_body_in_the_request_encoding(
        recording: tuple[Listener, RecordingPublisher]) -> None:
    listener, publisher = recording
    for content_type, body in ((PROTOBUF, b"\xff\xff\xff"), (JSON, b'{"resourceSpans": 7}')):
        status, _, answer = listener.post(body, content_type)
        assert status == 400 and _status(answer, content_type).code == 3  # INVALID_ARGUMENT
    status, _, answer = listener.post(b"{}", "text/plain")
    assert status == 415 and "application/x-protobuf" in _status(answer, JSON).message
    status, _, _ = listener.post(gzip.compress(b"{}"), JSON, content_encoding="br")
    assert status == 415
    status, _, answer = http_head_only(listener.http.port, "/v1/traces", PROTOBUF, 2 << 20)  # the listener's 413
    assert status == 413 and _status(answer, PROTOBUF).code == 8  # RESOURCE_EXHAUSTED
    status, _, answer = listener.post(gzip.compress(b"\n\0" * (4 << 20)), PROTOBUF, content_encoding="gzip")
    assert status == 413 and "inflates past" in _status(answer, PROTOBUF).message  # a gzip bomb stops at the limit
    status, _, answer = listener.post(b"garbage", PROTOBUF, content_encoding="gzip")
    assert status == 400 and "corrupt" in _status(answer, PROTOBUF).message
    status, _, _ = listener.post(b"", path="/v1/traces", method="GET")
    assert status == 405
    status, _, _ = listener.post(b"", path="/v1/metrics")
    assert status == 404
    assert publisher.records == []
    assert listener.metrics.exports.labels(code="INVALID_ARGUMENT")._value.get() == 3
    assert listener.metrics.exports.labels(code="RESOURCE_EXHAUSTED")._value.get() == 2
    assert listener.metrics.http_exports.labels(status="413")._value.get() == 2


def test_a_full_queue_and_a_stopping_receiver_answer_503_with_retry_after() -> None:
    queue = MemoryQueue(2)
    listener = Listener(queue)
    try:
        status, headers, answer = listener.post(_request(3).SerializeToString())
        assert status == 503 and headers["retry-after"] == "1"
        assert _status(answer, PROTOBUF).code == 14  # UNAVAILABLE
        assert queue.depth == 0  # nothing of the refused request was kept
        listener.core.accepting = False
        status, headers, answer = listener.post(otlp_json(_request(1)), JSON)
        assert status == 503 and headers["retry-after"] == "1" and "shutting down" in _status(answer, JSON).message
    finally:
        listener.close()


def test_a_busy_decode_budget_answers_429_with_retry_after_and_retry_info() -> None:
    budget = MemoryBudget(1 << 20)
    listener = Listener(RecordingPublisher(), memory=budget)
    try:
        assert budget.acquire(1 << 20, 0)  # another request holds the whole budget
        status, headers, answer = listener.post(_request(1).SerializeToString())
        assert status == 429 and headers["retry-after"] == "1"
        details = _status(answer, PROTOBUF).details
        retry = error_details_pb2.RetryInfo()
        assert details[0].Unpack(retry) and retry.retry_delay.seconds == 1
        budget.release(1 << 20)
        assert listener.post(_request(1).SerializeToString())[0] == 200
    finally:
        listener.close()


def test_over_a_request_limit_is_400_as_grpc_is_invalid_argument() -> None:
    listener = Listener(RecordingPublisher(), limits=DecodeLimits(max_spans=2))
    try:
        status, _, answer = listener.post(_request(3).SerializeToString())
        assert status == 400 and "over the limit of 2 per request" in _status(answer, PROTOBUF).message
        with pytest.raises(grpc.RpcError) as refused:
            listener.grpc_export(_request(3))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        listener.close()
