"""Sending one OTLP Export to the next hop, over gRPC or HTTP, and saying whether a failure is worth a retry.

``grpc://HOST:PORT`` (``grpcs://`` for TLS) calls ``TraceService/Export``; ``http://`` and ``https://``
POST protobuf to the URL's path (``/v1/traces`` when it has none). Both compress with gzip and send
the configured header fields. A failure the OTLP specification calls retryable (gRPC UNAVAILABLE,
RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED; HTTP 429, 502, 503, 504; a connection that
fails) raises :class:`Retryable` with the delay the next hop asked for, if any; anything else raises
:class:`Rejected` (retrying would fail the same way).
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["GrpcSender", "HttpSender", "Rejected", "Retryable", "Sender", "Target", "parse_headers", "parse_target",
           "sender_for"]

SCHEMES = ("grpc", "grpcs", "http", "https")
_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED}
_RETRYABLE_HTTP = {429, 502, 503, 504}


class Retryable(Exception):
    """The next hop did not take the spans now; ``delay`` is what it asked to wait (None: our backoff)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Rejected(Exception):
    """The next hop refused the spans for good."""


class Sender(Protocol):
    def send(self, request: ExportTraceServiceRequest) -> int:
        """Send; return the spans the next hop rejected in ``partial_success``. Raises Retryable or Rejected."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send (from ``--forward-otlp`` and its settings)."""

    scheme: str
    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    timeout: float = 10.0

    @property
    def secure(self) -> bool:
        return self.scheme in ("grpcs", "https")

    def describe(self) -> str:
        """The URL without credentials (header values are never logged)."""
        path = self.path if self.scheme.startswith("http") else ""
        return f"{self.scheme}://{self.host}:{self.port}{path}"


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """``key=value,key2=value2`` (as ``OTEL_EXPORTER_OTLP_HEADERS``; values URL-decoded) -> header fields."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("headers must be key=value pairs separated by commas")
        out.append((key.strip().lower(), urllib.parse.unquote(value.strip())))
    return tuple(out)


def parse_target(url: str, headers: str = "", ca_file: str = "", client_cert_file: str = "",
                 client_key_file: str = "", timeout: float = 10.0) -> Target:
    """A :class:`Target` from a URL; raises ValueError naming what is wrong (never a header value)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"must start with {', '.join(s + '://' for s in SCHEMES)}, got {url.split(':')[0]!r}")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    default_port = 4317 if parts.scheme.startswith("grpc") else 4318
    path = parts.path or "/v1/traces"
    if parts.scheme.startswith("grpc") and parts.path not in ("", "/"):
        raise ValueError("a grpc:// target is HOST:PORT, without a path")
    return Target(parts.scheme, parts.hostname, port or default_port, path, parse_headers(headers), ca_file,
                  client_cert_file, client_key_file, timeout)


class GrpcSender:
    """``TraceService/Export`` over one gRPC channel (reconnects by itself)."""

    def __init__(self, target: Target) -> None:
        address = f"{target.host}:{target.port}"
        if target.secure:
            def read(path: str) -> bytes | None:
                return Path(path).read_bytes() if path else None

            credentials = grpc.ssl_channel_credentials(read(target.ca_file), read(target.client_key_file),
                                                       read(target.client_cert_file))
            self._channel = grpc.secure_channel(address, credentials, compression=grpc.Compression.Gzip)
        else:
            self._channel = grpc.insecure_channel(address, compression=grpc.Compression.Gzip)
        self._export = self._channel.unary_unary(_METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                                 response_deserializer=ExportTraceServiceResponse.FromString)
        self._target = target

    def send(self, request: ExportTraceServiceRequest) -> int:
        try:
            response = self._export(request, timeout=self._target.timeout, metadata=self._target.headers)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            message = f"{code.name}: {str(exc.details() if hasattr(exc, 'details') else '')[:300]}"
            if code in _RETRYABLE_GRPC:
                raise Retryable(message) from None
            raise Rejected(message) from None
        return int(response.partial_success.rejected_spans)

    def close(self) -> None:
        self._channel.close()


class HttpSender:
    """``POST`` protobuf to an OTLP/HTTP traces URL, one connection at a time (kept alive)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._context: ssl.SSLContext | None = None
        if target.secure:
            self._context = ssl.create_default_context(cafile=target.ca_file or None)
            if target.client_cert_file:
                self._context.load_cert_chain(target.client_cert_file, target.client_key_file or None)
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            t = self._target
            if self._context is not None:
                self._connection = http.client.HTTPSConnection(t.host, t.port, timeout=t.timeout, context=self._context)
            else:
                self._connection = http.client.HTTPConnection(t.host, t.port, timeout=t.timeout)
        return self._connection

    def send(self, request: ExportTraceServiceRequest) -> int:
        body = gzip.compress(request.SerializeToString(), compresslevel=5)
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", **dict(self._target.headers)}
        try:
            connection = self._connect()
            connection.request("POST", self._target.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise Retryable(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if response.status == 200:
            try:
                return int(ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans)
            except Exception:
                return 0  # an answer that is not a response (some proxies answer 200 with nothing useful)
        message = f"HTTP {response.status}"
        if response.status in _RETRYABLE_HTTP:
            delay = response.getheader("Retry-After", "")
            raise Retryable(message, float(delay) if delay.isdigit() else None)
        raise Rejected(message)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def sender_for(target: Target) -> Sender:
    return GrpcSender(target) if target.scheme.startswith("grpc") else HttpSender(target)
