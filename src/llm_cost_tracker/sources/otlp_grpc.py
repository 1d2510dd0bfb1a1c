"""The OTLP/gRPC source: ``TraceService/Export`` in, records handed to the pipeline's publisher.

Status codes follow the OTLP specification so collectors do the right thing:
UNAUTHENTICATED for a wrong bearer token, INVALID_ARGUMENT for a payload that is not an
ExportTraceServiceRequest (not retried), RESOURCE_EXHAUSTED for a message over the size limit
(grpc enforces it), UNAVAILABLE when the queue is full, its backend unreachable or the service
shutting down (retried with backoff), RESOURCE_EXHAUSTED with a RetryInfo when too much is in flight
to the queue's backend (retried after the given delay), and ``partial_success`` for individual spans
that could not be used. A request over the per-request span or attribute limits gets INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llm_cost_tracker.access.guard import AccessGuard
from llm_cost_tracker.access.tls import TlsFiles, grpc_credentials
from llm_cost_tracker.access.tokens import TokenTable
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources.otlp_decode import (
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    decode_spans,
    parse_request,
)
from llm_cost_tracker.transforms.calls import CallIdentity
from llm_cost_tracker.transforms.detect import NOT_LLM
from llm_cost_tracker.types import (
    Drop,
    Publisher,
    QueueBusy,
    QueueFull,
    QueueUnavailable,
    SpanRecord,
    Transform,
)

_NO_TOKENS = TokenTable()
SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"
log = get_logger("otlp_grpc")
TRANSFORM_ERROR = "transform_error"
"""Rejection reason of a span a transform failed on (a bug, logged; the other spans go on)."""


class TraceExportHandler:
    """The Export method: decode, run the transforms, publish, answer.

    Args:
        transforms: per-record stages, in order.
        publisher: the queue the accepted records go to.
        limits: per-span bounds applied while decoding.
        metrics: counters to update.
        guard: authenticates callers and applies tenant rate limits (everyone is admitted without one).
        ack_timeout: seconds to wait for the publisher's durability promise.
        calls: call identity, run on the request's records after the transforms (marks the later spans
            of a provider call as duplicates; told to forget the request's spans when it is not accepted).
    """

    def __init__(self, transforms: list[Transform], publisher: Publisher, limits: DecodeLimits,
                 metrics: Metrics, guard: AccessGuard | None = None, ack_timeout: float = 10.0,
                 calls: CallIdentity | None = None) -> None:
        self._transforms = transforms
        self._calls = calls
        self._publisher = publisher
        self._limits = limits
        self._metrics = metrics
        self._guard = guard or AccessGuard(lambda: _NO_TOKENS)
        self._ack_timeout = ack_timeout
        self.accepting = True

    def _forget(self, records: list[SpanRecord]) -> None:
        if self._calls is not None:
            self._calls.forget(records)

    def _abort(self, context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
        self._metrics.exports.labels(code=code.name).inc()
        context.abort(code, message)

    def _abort_busy(self, context: grpc.ServicerContext, exc: QueueBusy,
                    reason: str = "too many spans in flight") -> None:
        """RESOURCE_EXHAUSTED with a RetryInfo, in both places clients look for it.

        ``grpc-status-details-bin`` (a google.rpc.Status with the RetryInfo in its details) is the
        standard one the Collector's exporter reads; ``google.rpc.retryinfo-bin`` is where the
        OpenTelemetry Python exporter looks.
        """
        delay = max(exc.retry_after_seconds, 0.0)
        retry = error_details_pb2.RetryInfo(
            retry_delay=Duration(seconds=int(delay), nanos=int((delay - int(delay)) * 1e9)))
        message = f"{reason}, retry in {delay:g}s: {exc}"
        status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message)
        status.details.add().Pack(retry)
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),
                                       ("google.rpc.retryinfo-bin", retry.SerializeToString())))
        self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, message)

    def __call__(self, payload: bytes, context: grpc.ServicerContext) -> bytes:
        principal = self._guard.authenticate(context.invocation_metadata())
        if principal is None:
            self._abort(context, grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not self.accepting:
            self._abort(context, grpc.StatusCode.UNAVAILABLE, "shutting down; retry against another replica")
        try:
            request = parse_request(payload)
        except DecodeError as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                        f"malformed ExportTraceServiceRequest ({len(payload)} bytes): {exc}")
        try:
            decoded = decode_spans(request, self._limits)
        except LimitExceeded as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        wait = self._guard.admit(principal, len(decoded.records), len(payload))
        if wait > 0:
            self._abort_busy(context, QueueBusy(f"tenant {principal.tenant_name!r} is over its rate limit",
                                                retry_after_seconds=wait), reason="rate limited")
        if principal.tenant is not None:
            for record in decoded.records:
                record.tenant = principal.tenant.name  # the token decides the tenant, not the payload
        records: list[SpanRecord] = []
        other = 0
        for record in decoded.records:
            try:
                for transform in self._transforms:
                    record = transform(record)
            except Drop as drop:
                if drop.reason == NOT_LLM:
                    other += 1
                else:
                    decoded.reject(drop.reason, f"span {record.span_id} ({record.span_name!r}): {drop.reason}")
                continue
            except Exception as exc:  # a bug on one span's input: reject that span, keep the rest of the request
                # fail closed (the span is not stored half-redacted); the log names the error, never values
                log.error("transform failed; span rejected", transform=type(transform).__name__,
                          error=type(exc).__name__, span_id=record.span_id)
                decoded.reject(TRANSFORM_ERROR, f"span {record.span_id}: internal error in "
                               f"{type(transform).__name__} ({type(exc).__name__}); reported to the operator")
                continue
            records.append(record)
        if self._calls is not None:
            records = self._calls(records)
        try:
            self._publisher.publish(records).result(timeout=self._ack_timeout)  # raises a failed ack's error
        except QueueBusy as exc:
            self._forget(records)
            self._abort_busy(context, exc)
        except (QueueFull, QueueUnavailable) as exc:
            self._forget(records)
            self._abort(context, grpc.StatusCode.UNAVAILABLE, f"cannot accept spans now, retry later: {exc}")
        except futures.TimeoutError:
            self._forget(records)
            self._abort(context, grpc.StatusCode.UNAVAILABLE,
                        f"spans not confirmed stored within {self._ack_timeout}s, retry later")
        m = self._metrics
        m.spend.observe(records)
        if records:
            m.spans_received.labels(kind="llm").inc(len(records))
        if other:
            m.spans_received.labels(kind="other").inc(other)
        for reason, count in decoded.rejected.items():
            m.spans_rejected.labels(reason=reason).inc(count)
        if decoded.truncated_attributes:
            m.attributes_truncated.inc(decoded.truncated_attributes)
        m.exports.labels(code="OK").inc()
        response = ExportTraceServiceResponse()
        if decoded.rejected or decoded.messages:
            response.partial_success.rejected_spans = decoded.rejected_count
            response.partial_success.error_message = "; ".join(decoded.messages)
        return response.SerializeToString()


class OtlpGrpcServer:
    """A grpcio server with the TraceService and the standard health service.

    Args:
        address: HOST:PORT to listen on (port 0 picks a free one; see ``port``).
        handler: the Export handler.
        max_message_bytes: larger requests get RESOURCE_EXHAUSTED.
        workers: handler threads.
        tls: serve TLS (mutual when it names a client CA) instead of plaintext.
    """

    def __init__(self, address: str, handler: Callable[[bytes, grpc.ServicerContext], bytes],
                 max_message_bytes: int, workers: int, tls: TlsFiles | None = None) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp"),
            options=[("grpc.max_receive_message_length", max_message_bytes),
                     ("grpc.max_send_message_length", 4 * 1024 * 1024),
                     ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=workers * 8,
        )
        method = grpc.unary_unary_rpc_method_handler(handler)  # raw bytes in and out
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": method}),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        if tls is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, grpc_credentials(tls))
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")

    def start(self) -> None:
        self._server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float) -> None:
        """Report NOT_SERVING, refuse new calls and wait up to ``grace`` seconds for calls in flight."""
        self.health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
