"""The OTLP/gRPC source: ``TraceService/Export`` in, records handed to the pipeline's publisher.

Status codes follow the OTLP specification so collectors do the right thing:
UNAUTHENTICATED for a wrong bearer token, INVALID_ARGUMENT for a payload that is not an
ExportTraceServiceRequest (not retried), RESOURCE_EXHAUSTED for a message over the size limit
(grpc enforces it), UNAVAILABLE when the queue is full, its backend unreachable or the service
shutting down (retried with backoff), RESOURCE_EXHAUSTED with a RetryInfo when too much is in flight
to the queue's backend (retried after the given delay), and ``partial_success`` for individual spans
that could not be used. A request over the per-request span or attribute limits gets INVALID_ARGUMENT.

Hostile clients (docs/hardening.md): the bearer token is checked from the call's metadata by a
server interceptor, before any message is read, and a refused call ends at once without waiting
for its message; an admitted call must send its message within ``receive_timeout`` seconds or it is
cancelled; decoding takes a share of a memory budget sized from the message (RESOURCE_EXHAUSTED
with a retry delay when the budget stays full); and :meth:`OtlpGrpcServer.saturation` tells
``/readyz`` when every stream slot is taken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from llm_cost_tracker.access.guard import KEEP_PAYLOAD_TENANT, AccessGuard, OverBurst
from llm_cost_tracker.access.tls import TlsFiles, grpc_credentials
from llm_cost_tracker.access.tokens import Principal, TokenTable
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources.admission import MemoryBudget, ReceiveWatchdog, decode_cost
from llm_cost_tracker.sources.otlp_decode import (
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    check_request,
    decode_spans,
    parse_request,
)
from llm_cost_tracker.transforms.calls import CallIdentity
from llm_cost_tracker.transforms.chain import TRANSFORM_ERROR, Chain
from llm_cost_tracker.types import (
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
__all__ = ["SERVICE_NAME", "TRANSFORM_ERROR", "OtlpGrpcServer", "TraceExportHandler"]


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
        memory: the decode memory budget (unbounded without one).
        memory_wait: seconds a request may wait for its share of ``memory``.
        time_bounds: moves spans whose start time the store cannot hold into the request's rejections
            (``SpanTimeBounds``); None accepts any start time the decoder does.
    """

    def __init__(self, transforms: list[Transform], publisher: Publisher, limits: DecodeLimits,
                 metrics: Metrics, guard: AccessGuard | None = None, ack_timeout: float = 10.0,
                 calls: CallIdentity | None = None, memory: MemoryBudget | None = None,
                 memory_wait: float = 5.0, time_bounds: Callable[[DecodedBatch], None] | None = None) -> None:
        self._time_bounds = time_bounds
        self._chain = Chain(transforms, calls)
        self._publisher = publisher
        self._limits = limits
        self._metrics = metrics
        self._guard = guard or AccessGuard(lambda: _NO_TOKENS)
        self._ack_timeout = ack_timeout
        self.memory = memory
        self._memory_wait = memory_wait
        self.accepting = True

    def _forget(self, records: list[SpanRecord]) -> None:
        self._chain.forget(records)

    def gate(self, metadata: Sequence[tuple[str, str | bytes]]) -> tuple[grpc.StatusCode, str] | None:
        """The refusal of a call from its metadata alone (wrong token, shutting down), or None to admit it."""
        if self._guard.authenticate(metadata) is None:
            self._metrics.exports.labels(code=grpc.StatusCode.UNAUTHENTICATED.name).inc()
            return grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token"
        if not self.accepting:
            self._metrics.exports.labels(code=grpc.StatusCode.UNAVAILABLE.name).inc()
            return grpc.StatusCode.UNAVAILABLE, "shutting down; retry against another replica"
        return None

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

    def _admit(self, principal: Principal, spans: int | None, size: int, context: grpc.ServicerContext,
               charge: bool = True) -> None:
        """Abort unless the tenant's rate limits admit the request (charged when ``charge``)."""
        try:
            wait = self._guard.admit(principal, spans, size, charge)
        except OverBurst as exc:  # never fits: RESOURCE_EXHAUSTED without RetryInfo is not retried
            self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        if wait > 0:
            self._abort_busy(context, QueueBusy(f"tenant {principal.tenant_name!r} is over its rate limit",
                                                retry_after_seconds=wait), reason="rate limited")

    def __call__(self, payload: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = context.invocation_metadata()
        principal = self._guard.authenticate(metadata)
        if principal is None:
            self._abort(context, grpc.StatusCode.UNAUTHENTICATED,
                        "missing or wrong bearer token (send exactly one 'authorization: Bearer <token>')")
        try:
            tenant = self._guard.tenant_for(principal, metadata)
        except ValueError as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not self.accepting:
            self._abort(context, grpc.StatusCode.UNAVAILABLE, "shutting down; retry against another replica")
        assert principal is not None
        self._admit(principal, None, len(payload), context, charge=False)  # bytes: known before parsing
        if self.memory is None:
            return self._export(payload, principal, tenant, context)
        cost = decode_cost(len(payload))
        if not self.memory.acquire(cost, self._memory_wait):
            self._abort_busy(context, QueueBusy(
                f"{self.memory.in_use >> 20} MiB of requests are being decoded (budget "
                f"{self.memory.capacity >> 20} MiB)", retry_after_seconds=1.0), reason="receiver memory busy")
        try:
            return self._export(payload, principal, tenant, context)
        finally:
            self.memory.release(cost)

    def _export(self, payload: bytes, principal: Principal, tenant: str | None,
                context: grpc.ServicerContext) -> bytes:
        try:
            request = parse_request(payload)
        except DecodeError as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                        f"malformed ExportTraceServiceRequest ({len(payload)} bytes): {exc}")
        try:
            spans = check_request(request, self._limits)  # counts without decoding a span
            self._admit(principal, spans, len(payload), context)
            decoded = decode_spans(request, self._limits, checked=True)
        except LimitExceeded as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if self._time_bounds is not None:
            self._time_bounds(decoded)
        if tenant is not KEEP_PAYLOAD_TENANT:
            for record in decoded.records:
                record.tenant = tenant  # the token (or an admin's header) decides the tenant, not the payload
        processed = self._chain.process(decoded.records, decoded.reject)
        records, other = processed.records, processed.other
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
        m = self._metrics  # spend is counted by the writer, after the store, from first arrivals only
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

    Export is served as a stream-unary method so the server decides how long to wait for the one
    message: a call that sends headers and no message is cancelled after ``receive_timeout``. Calls
    the handler's ``gate`` refuses (from metadata, in an interceptor) end without reading anything.
    Threads: ``max_streams`` (they mostly wait for messages); decoding is bounded by the handler's
    memory budget, and ``workers`` of them may decode at once.

    Args:
        address: HOST:PORT to listen on (port 0 picks a free one; see ``port``).
        handler: the Export handler (its ``gate`` method, if any, screens calls by metadata).
        max_message_bytes: larger requests get RESOURCE_EXHAUSTED.
        workers: requests decoded at once.
        tls: serve TLS (mutual when it names a client CA) instead of plaintext.
        max_streams: concurrent calls; more get RESOURCE_EXHAUSTED from grpc (default ``workers * 8``).
        receive_timeout: seconds an admitted call has to send its message.
    """

    def __init__(self, address: str, handler: Callable[[bytes, grpc.ServicerContext], bytes],
                 max_message_bytes: int, workers: int, tls: TlsFiles | None = None,
                 max_streams: int = 0, receive_timeout: float = 10.0) -> None:
        self.max_streams = max_streams or workers * 8
        self._handler = handler
        self._receive_timeout = receive_timeout
        self._decoding = threading.BoundedSemaphore(workers)
        self._watchdog = ReceiveWatchdog()
        self._lock = threading.Lock()
        self.active = 0
        """Export calls in progress (receiving, waiting or decoding)."""
        gate = getattr(handler, "gate", None)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.max_streams + 4, thread_name_prefix="otlp"),
            interceptors=[_Gate(gate)] if gate is not None else [],
            options=[("grpc.max_receive_message_length", max_message_bytes),
                     ("grpc.max_send_message_length", 4 * 1024 * 1024),
                     ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=self.max_streams,
        )
        method = grpc.stream_unary_rpc_method_handler(self._export)  # raw bytes in and out
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

    @property
    def stalled_cancelled(self) -> int:
        """Calls cancelled because their message did not arrive within ``receive_timeout``."""
        return self._watchdog.fired

    def saturation(self) -> str:
        """Why the server cannot take another call now ("" when it can): drives /readyz."""
        if self.active >= self.max_streams:
            return f"gRPC at its stream limit ({self.active} of {self.max_streams} calls in progress)"
        return ""

    def _export(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes | None:
        with self._lock:
            self.active += 1
        try:
            token = self._watchdog.arm(self._receive_timeout, context.cancel)
            try:
                payload = next(requests, None)
            except grpc.RpcError:
                return None  # cancelled (stalled past receive_timeout, or by the client)
            finally:
                self._watchdog.disarm(token)
            if payload is None:
                if context.is_active():
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Export needs one ExportTraceServiceRequest")
                return None
            with self._decoding:
                return self._handler(payload, context)
        finally:
            with self._lock:
                self.active -= 1

    def start(self) -> None:
        self._server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float) -> None:
        """Report NOT_SERVING, refuse new calls and wait up to ``grace`` seconds for calls in flight."""
        self.health.enter_graceful_shutdown()
        self._server.stop(grace).wait()


_EXPORT_METHOD = f"/{SERVICE_NAME}/Export"


class _Gate(grpc.ServerInterceptor):  # type: ignore[misc]
    """Screens Export calls by metadata before a thread waits for their message."""

    def __init__(self, gate: Callable[[Sequence[tuple[str, str | bytes]]], tuple[grpc.StatusCode, str] | None]):
        self._gate = gate

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method != _EXPORT_METHOD:
            return continuation(details)
        refusal = self._gate(details.invocation_metadata or ())
        if refusal is None:
            return continuation(details)
        code, message = refusal

        def refuse(_requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
            context.abort(code, message)  # never reads the message
            raise AssertionError("unreachable")

        return grpc.stream_unary_rpc_method_handler(refuse)
