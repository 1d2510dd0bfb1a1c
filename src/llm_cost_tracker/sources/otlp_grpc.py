"""The OTLP/gRPC source: ``TraceService/Export`` in, records handed to the pipeline's publisher.

Status codes follow the OTLP specification so collectors do the right thing:
UNAUTHENTICATED for a wrong bearer token, INVALID_ARGUMENT for a payload that is not an
ExportTraceServiceRequest (not retried), RESOURCE_EXHAUSTED for a message over the size limit
(grpc enforces it), UNAVAILABLE when the queue is full, its backend unreachable or the service
shutting down (retried with backoff), RESOURCE_EXHAUSTED with a RetryInfo when too much is in flight
to the queue's backend (retried after the given delay), and ``partial_success`` for individual spans
that could not be used. A request over the per-request span or attribute limits gets INVALID_ARGUMENT.
Which refusal applies is decided in ``sources/export.py``, shared with the OTLP/HTTP receiver; this
module maps it to a status code.

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
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from llm_cost_tracker.access.tls import TlsFiles, grpc_credentials
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sources.admission import MemoryBudget, ReceiveWatchdog
from llm_cost_tracker.sources.export import (
    BUSY,
    INVALID,
    OVER_BURST,
    TOO_LARGE,
    TRANSFORM_ERROR,
    UNAUTHENTICATED,
    UNAVAILABLE,
    ExportCore,
    Refused,
)

__all__ = ["SERVICE_NAME", "STATUS", "TRANSFORM_ERROR", "OtlpGrpcServer", "TraceExportHandler"]

SERVICE_NAME = "opentelemetry.proto.collector.trace.v1.TraceService"
log = get_logger("otlp_grpc")
STATUS = {UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED, INVALID: grpc.StatusCode.INVALID_ARGUMENT,
          TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED, OVER_BURST: grpc.StatusCode.RESOURCE_EXHAUSTED,
          UNAVAILABLE: grpc.StatusCode.UNAVAILABLE, BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED}
"""The gRPC status of each kind of refusal (sources/export.py decides which kind)."""


def _retry_trailers(refused: Refused) -> tuple[tuple[str, bytes], ...]:
    """A RetryInfo in both places clients look for it.

    ``grpc-status-details-bin`` (a google.rpc.Status with the RetryInfo in its details) is the standard
    one the Collector's exporter reads; ``google.rpc.retryinfo-bin`` is where the OpenTelemetry Python
    exporter looks.
    """
    delay = max(refused.retry_after or 0.0, 0.0)
    retry = error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=int(delay), nanos=int((delay - int(delay)) * 1e9)))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=refused.message)
    status.details.add().Pack(retry)
    return (("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry.SerializeToString()))


class TraceExportHandler:
    """The Export method over gRPC: the body and metadata to :class:`ExportCore`, its refusals to status codes.

    Takes an ``ExportCore`` as ``core=``, or the core's arguments to build one (transforms, publisher,
    limits, metrics, guard, ack_timeout, calls, memory, memory_wait, time_bounds).
    """

    def __init__(self, *args: Any, core: ExportCore | None = None, **kwargs: Any) -> None:
        self.core = core if core is not None else ExportCore(*args, **kwargs)

    @property
    def accepting(self) -> bool:
        return self.core.accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        self.core.accepting = value

    @property
    def memory(self) -> MemoryBudget | None:
        return self.core.memory

    def gate(self, metadata: Sequence[tuple[str, str | bytes]]) -> tuple[grpc.StatusCode, str] | None:
        """The refusal of a call from its metadata alone (wrong token, shutting down), or None to admit it."""
        refused = self.core.gate(metadata)
        return None if refused is None else (STATUS[refused.kind], refused.message)

    def __call__(self, payload: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            return self.core.export(payload, context.invocation_metadata()).SerializeToString()
        except Refused as refused:
            if refused.kind == BUSY:  # retry after the given delay (without a RetryInfo: never, e.g. over burst)
                context.set_trailing_metadata(_retry_trailers(refused))
            context.abort(STATUS[refused.kind], refused.message)
            raise AssertionError("unreachable") from None


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
        method: grpc.RpcMethodHandler[bytes, bytes] = grpc.stream_unary_rpc_method_handler(self._export)  # raw bytes in and out
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


class _Gate(grpc.ServerInterceptor):
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
