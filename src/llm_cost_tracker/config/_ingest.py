"""The receiving side's sections: listeners, access (tokens, TLS), decode limits, call identity, the
in-process queue, the batch writer, forwarding and the SQL endpoint.

Each section is built by its component (``FrontEnd``, ``MemoryQueue.from_config``,
``BatchPolicy.from_config``, ``build_forwarder``, ``SqlEndpoint.from_config``, ...) and checks itself.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm_cost_tracker.config._checks import at_least_zero, listens, missing_files, positive, split_host_port
from llm_cost_tracker.config._section import Section

if TYPE_CHECKING:
    from llm_cost_tracker.access.tls import TlsFiles

__all__ = ["ACK_MODES", "FORWARD_SCHEMES", "AccessConfig", "BatchConfig", "CallWindowConfig", "DecodeConfig",
           "ForwardConfig", "ListenersConfig", "QueueConfig", "SqlHttpConfig"]

ACK_MODES = ("queued", "stored")
FORWARD_SCHEMES = ("grpc", "grpcs", "http", "https")
_SQL_OFF = ("", "off", "none", "false", "0")


@dataclass(frozen=True, slots=True)
class ListenersConfig(Section):
    """The OTLP/gRPC, OTLP/HTTP and HTTP listeners and the bounds of what they take in (``sources``)."""

    otlp_grpc: str
    otlp_http: str
    http: str
    max_message_bytes: int
    grpc_workers: int
    stage_workers: int
    columnar_path: bool
    grpc_max_streams: int
    grpc_receive_timeout_seconds: float
    max_decode_bytes: int
    http_max_connections: int

    def validate(self) -> list[str]:
        problems: list[str] = []
        for name in ("otlp_grpc", "http"):
            try:
                split_host_port(getattr(self, name))
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if listens(self.otlp_http):
            try:
                split_host_port(self.otlp_http)
            except ValueError as exc:
                problems.append(f"otlp_http: {exc} (or 'off')")
        return problems + positive(self, "max_message_bytes", "grpc_workers", "stage_workers", "grpc_max_streams",
                                   "grpc_receive_timeout_seconds", "max_decode_bytes", "http_max_connections")


@dataclass(frozen=True, slots=True)
class AccessConfig(Section):
    """Bearer tokens and the listeners' TLS (``access``); per-tenant tokens are the config file's [auth]."""

    auth_token: str = field(repr=False)
    metrics_token: str = field(repr=False)
    admin_tenant_from_payload: bool
    tls_cert_file: str
    tls_key_file: str
    tls_client_ca_file: str

    def tls(self) -> TlsFiles | None:
        """The listeners' TLS files, or None for plaintext."""
        if not self.tls_cert_file:
            return None
        from llm_cost_tracker.access.tls import (
            TlsFiles,  # grpc: not loaded by every command that reads settings
        )

        return TlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def validate(self) -> list[str]:
        from llm_cost_tracker.access.tls import (
            TlsFiles,  # grpc: not loaded by every command that reads settings
        )

        return TlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file).problems("tls")


@dataclass(frozen=True, slots=True)
class DecodeConfig(Section):
    """What one request and one span may carry (``sources.otlp_decode``, ``sources.span_time``)."""

    max_attributes_per_span: int
    max_attribute_value_bytes: int
    tenant_attribute: str
    max_spans_per_request: int
    max_attributes_per_request: int
    max_attribute_depth: int
    max_attribute_key_bytes: int
    max_future_span_seconds: int

    def validate(self) -> list[str]:
        return [*positive(self, "max_attributes_per_span", "max_attribute_value_bytes", "max_spans_per_request",
                          "max_attributes_per_request", "max_attribute_depth", "max_attribute_key_bytes"),
                *at_least_zero(self, "max_future_span_seconds")]


@dataclass(frozen=True, slots=True)
class CallWindowConfig(Section):
    """Call identity's window (``transforms.calls``): LLM spans remembered, and for how long."""

    call_window_entries: int
    call_window_seconds: float

    def validate(self) -> list[str]:
        return positive(self, "call_window_entries", "call_window_seconds")


@dataclass(frozen=True, slots=True)
class QueueConfig(Section):
    """The in-process queue (``queue.memory``): its bounds and when an Export is answered."""

    queue_capacity: int
    queue_max_bytes: int
    ack: str
    ack_timeout_seconds: float

    def validate(self) -> list[str]:
        problems = positive(self, "queue_max_bytes", "queue_capacity", "ack_timeout_seconds")
        if self.ack not in ACK_MODES:
            problems.append(f"ack: must be one of {', '.join(ACK_MODES)}, got {self.ack!r}")
        return problems


@dataclass(frozen=True, slots=True)
class BatchConfig(Section):
    """The batch writer (``sinks.batcher``): when a batch is flushed and how long a failed write is retried."""

    batch_size: int
    batch_age_seconds: float
    sink_retry_max_seconds: float

    def validate(self) -> list[str]:
        return positive(self, "batch_size", "batch_age_seconds")


@dataclass(frozen=True, slots=True)
class ForwardConfig(Section):
    """Forwarding priced spans to the next OTLP hop (``forward``; the URL's rules are ``forward.sender``'s)."""

    forward_otlp: str
    forward_all: bool
    forward_headers: str = field(repr=False)
    forward_ca_file: str
    forward_client_cert_file: str
    forward_client_key_file: str
    forward_queue_spans: int
    forward_timeout_seconds: float
    forward_retry_max_seconds: float

    @property
    def enabled(self) -> bool:
        return bool(self.forward_otlp)

    def validate(self) -> list[str]:
        problems: list[str] = []
        if self.forward_otlp:
            url = urllib.parse.urlsplit(self.forward_otlp)
            try:
                url.port  # noqa: B018 - raises on a bad port
            except ValueError:
                problems.append("forward_otlp: has an invalid port")
            if url.scheme not in FORWARD_SCHEMES:
                problems.append(f"forward_otlp: must start with {', '.join(x + '://' for x in FORWARD_SCHEMES)}, "
                                f"got {self.forward_otlp.split(':')[0]!r}")
            elif not url.hostname:
                problems.append("forward_otlp: names no host")
            elif url.scheme.startswith("grpc") and url.path not in ("", "/"):
                problems.append("forward_otlp: a grpc:// target is HOST:PORT, without a path")
        elif self.forward_all:
            problems.append("forward_all: needs forward_otlp (the next hop)")
        for item in filter(None, (part.strip() for part in self.forward_headers.split(","))):
            if "=" not in item or not item.partition("=")[0].strip():
                problems.append("forward_headers: must be key=value pairs separated by commas")  # never the value
                break
        problems += missing_files(self, "forward_ca_file", "forward_client_cert_file", "forward_client_key_file")
        return problems + positive(self, "forward_queue_spans", "forward_timeout_seconds",
                                   "forward_retry_max_seconds")


@dataclass(frozen=True, slots=True)
class SqlHttpConfig(Section):
    """The SQL endpoint (``sql_http``): where it listens and the limits every query runs under."""

    sql_http: str
    sql_max_execution_seconds: float
    sql_max_result_rows: int
    sql_max_result_bytes: int
    sql_max_memory_bytes: int
    sql_max_concurrent: int
    sql_max_threads: int

    @property
    def enabled(self) -> bool:
        return self.sql_http.strip().lower() not in _SQL_OFF

    def validate(self) -> list[str]:
        problems: list[str] = []
        if self.enabled:
            try:
                split_host_port(self.sql_http)
            except ValueError as exc:
                problems.append(f"sql_http: {exc} (or 'off')")
        return problems + positive(self, "sql_max_execution_seconds", "sql_max_result_rows", "sql_max_result_bytes",
                                   "sql_max_memory_bytes", "sql_max_concurrent", "sql_max_threads")
