"""The Export handler keeps a request's other spans when a transform fails on one of them."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources import export, otlp_records
from llm_cost_tracker.sources.export import SCAN_MIN_BYTES
from llm_cost_tracker.sources.otlp_decode import DecodeLimits, parse_request
from llm_cost_tracker.sources.otlp_grpc import TRANSFORM_ERROR, OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.sources.otlp_records import ScanState
from llm_cost_tracker.testing import RecordingPublisher, genai_attributes, make_request, make_span
from llm_cost_tracker.types import SpanRecord

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"



def _fails_on_claude(record: SpanRecord) -> SpanRecord:
    if "claude" in record.attributes.get("gen_ai.request.model", ""):
        raise UnicodeDecodeError("utf-8", b"\xa9", 0, 1, "invalid start byte")
    return record


def test_a_transform_bug_rejects_only_its_span() -> None:
    publisher, metrics = RecordingPublisher(), Metrics()
    handler = TraceExportHandler([_fails_on_claude], publisher, DecodeLimits(64, 4096, "tenant.id"), metrics)
    server = OtlpGrpcServer("127.0.0.1:0", handler, 1 << 20, 2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            export = channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                         response_deserializer=ExportTraceServiceResponse.FromString)
            spans = [make_span(genai_attributes(model=m)) for m in ("gpt-4o", "claude-3-haiku", "gpt-4o-mini")]
            response = export(make_request(spans), timeout=10)
    finally:
        server.stop(0)
    assert response.partial_success.rejected_spans == 1
    assert "internal error in function (UnicodeDecodeError)" in response.partial_success.error_message
    assert [r.attributes["gen_ai.request.model"] for r in publisher.records] == ["gpt-4o", "gpt-4o-mini"]
    rejected = metrics.spans_rejected.labels(reason=TRANSFORM_ERROR)._value.get()
    assert rejected == 1


def test_big_requests_take_the_wire_scan_and_get_protobufs_records() -> None:
    """A request of SCAN_MIN_BYTES or more is decoded by the wire scan, with the records protobuf gives.

    The scan shares one string per distinct value (``"chat"`` on every span is one object); protobuf
    builds a string per value, which is how the two paths are told apart here."""
    spans = [make_span({**genai_attributes(model=m), "user.id": f"user-{i}"})
             for i, m in enumerate(["gpt-4o", "claude-3-haiku", "gpt-4o-mini"] * 40)]
    payload = make_request(spans, {"service.name": "svc", "tenant.id": "t"}).SerializeToString()
    assert len(payload) >= SCAN_MIN_BYTES
    by_path = {}
    for path, parse in (("scan", parse_request), ("protobuf", lambda body: parse_request(body))):
        publisher = RecordingPublisher()
        handler = TraceExportHandler([], publisher, DecodeLimits(), Metrics())
        handler.core.export(payload, {}, parse)
        by_path[path] = publisher.records
    scanned, decoded = by_path["scan"], by_path["protobuf"]
    assert scanned == decoded and len(scanned) == 120
    assert scanned[0].attributes["gen_ai.operation.name"] is scanned[1].attributes["gen_ai.operation.name"]
    assert decoded[0].attributes["gen_ai.operation.name"] is not decoded[1].attributes["gen_ai.operation.name"]


def test_a_failing_scan_leaves_the_request_to_protobuf(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A bug in the wire scan (injected here) costs neither the request nor a secret in the log."""
    secret_key = "sk-live-" + "a" * 40
    spans = [make_span({**genai_attributes(), "note": secret_key}) for _ in range(120)]
    payload = make_request(spans, {"service.name": "svc"}).SerializeToString()
    assert len(payload) >= SCAN_MIN_BYTES

    def broken(*_: object) -> None:
        raise IndexError(f"index {secret_key} is out of bounds")

    for target in ("scan_request", "decode_scan"):
        with monkeypatch.context() as patched:
            patched.setattr(export, target, broken)
            publisher = RecordingPublisher()
            TraceExportHandler([], publisher, DecodeLimits(), Metrics()).core.export(payload, {})
        assert len(publisher.records) == 120, target
        logged = capsys.readouterr()
        assert "wire scan" in logged.err + logged.out and secret_key not in logged.err + logged.out


def test_without_the_scan_protobuf_decodes_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warm-up that fails (no working compiler, say) turns the scan off, logged, and nothing else."""
    state = ScanState()
    monkeypatch.setattr(otlp_records, "SCAN", state)
    monkeypatch.setattr(export, "SCAN", state)
    monkeypatch.setattr(otlp_records, "scan_request", lambda *_: (_ for _ in ()).throw(OSError("no LLVM")))
    otlp_records.warm_up()
    assert not state.usable and "no LLVM" in state.error
    payload = make_request([make_span(genai_attributes()) for _ in range(120)]).SerializeToString()
    publisher = RecordingPublisher()
    TraceExportHandler([], publisher, DecodeLimits(), Metrics()).core.export(payload, {})
    assert len(publisher.records) == 120
    assert publisher.records[0].attributes["gen_ai.operation.name"] is not \
        publisher.records[1].attributes["gen_ai.operation.name"]  # protobuf's strings: the scan was not used


class _Gauge:
    """A transform that counts the requests inside the stages at once, and holds each until released."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.entered = threading.Condition()
        self.release = threading.Event()

    def __call__(self, record: SpanRecord) -> SpanRecord:
        with self.entered:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.entered.notify_all()
        self.release.wait(10)
        with self.entered:
            self.inside -= 1
        return record


def _payload(model: str) -> bytes:
    return make_request([make_span(genai_attributes(model=model))]).SerializeToString()


@pytest.mark.parametrize("stage_workers", [1, 2])
def test_stage_workers_bound_the_requests_in_the_stages(stage_workers: int) -> None:
    """``stage_workers`` requests at most run decode and the stages at once (they hold the GIL: more only
    interleave and starve the writer); the others wait their turn and are accepted too."""
    gauge, publisher = _Gauge(), RecordingPublisher()
    core = export.ExportCore([gauge], publisher, DecodeLimits(64, 4096, "tenant.id"), Metrics(),
                             stage_workers=stage_workers)
    threads = [threading.Thread(target=core.export, args=(_payload(m), ())) for m in ("gpt-4o", "gpt-4o-mini")]
    for thread in threads:
        thread.start()
    with gauge.entered:  # every chance for the second request to enter while the first is held
        gauge.entered.wait_for(lambda: gauge.most >= 2, timeout=2.0)
    gauge.release.set()
    for thread in threads:
        thread.join(10)
    assert gauge.most == stage_workers
    assert sorted(r.attributes["gen_ai.request.model"] for r in publisher.records) == ["gpt-4o", "gpt-4o-mini"]


class _HeldAcks:
    """A Publisher whose acknowledgements wait until the test gives them (``ack=stored`` with a slow store)."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []
        self.acks: list[Future[None]] = []
        self.published = threading.Semaphore(0)

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None, columns: object = None) -> Future[None]:
        ack: Future[None] = Future()
        self.records.extend(records)
        self.acks.append(ack)
        self.published.release()
        return ack

    def close(self) -> None:
        pass


def test_a_request_waiting_for_its_ack_leaves_the_stages_to_the_next() -> None:
    """The stage bound covers decode to queue, not the wait for the acknowledgement: with one stage worker,
    a second request is decoded and queued while the first waits to be stored, and both are answered OK."""
    publisher = _HeldAcks()
    core = export.ExportCore([], publisher, DecodeLimits(64, 4096, "tenant.id"), Metrics(), stage_workers=1)
    answers: list[ExportTraceServiceResponse] = []
    def send(payload: bytes) -> None:
        answers.append(core.export(payload, ()))

    threads = [threading.Thread(target=send, args=(_payload(m),)) for m in ("gpt-4o", "gpt-4o-mini")]
    for thread in threads:
        thread.start()
    assert publisher.published.acquire(timeout=10) and publisher.published.acquire(timeout=10), \
        "the second request waited for the first one's acknowledgement"
    assert not answers  # neither is answered before it is acknowledged
    for ack in publisher.acks:
        ack.set_result(None)
    for thread in threads:
        thread.join(10)
    assert len(answers) == 2 and not any(a.partial_success.rejected_spans for a in answers)
    assert sorted(r.attributes["gen_ai.request.model"] for r in publisher.records) == ["gpt-4o", "gpt-4o-mini"]
