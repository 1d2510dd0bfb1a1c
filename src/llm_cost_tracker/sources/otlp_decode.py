"""OTLP trace payloads -> :class:`SpanRecord` objects, with per-span validation.

Pure functions of the request: no I/O, no metrics, so they are easy to fuzz and benchmark. A span
that cannot be used is reported back (counted in ``rejected``), never raised.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llm_cost_tracker.types import SpanRecord

__all__ = ["DecodeError", "DecodeLimits", "DecodedBatch", "any_value_to_str", "decode_spans", "parse_request"]

_PRIORITY_PREFIXES = ("gen_ai.", "llm.", "openinference.", "tenant.", "service.")
TRUNCATED_SUFFIX = "...[truncated]"


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one span may store (the span is still priced when they are exceeded)."""

    max_attributes: int = 1024
    max_value_bytes: int = 65_536
    tenant_attribute: str = "tenant.id"


@dataclass(slots=True)
class DecodedBatch:
    """What one Export request turned into."""

    records: list[SpanRecord] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    """Spans not accepted, by reason."""
    truncated_attributes: int = 0
    messages: list[str] = field(default_factory=list)

    def reject(self, reason: str, message: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if len(self.messages) < 5:
            self.messages.append(message)

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


def parse_request(payload: bytes) -> ExportTraceServiceRequest:
    """Parse the wire bytes of an Export request; raises :class:`DecodeError` when malformed."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    return request


def any_value_to_str(value: AnyValue) -> str:
    """Render an attribute value as the string stored in the Map columns."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return repr(value.double_value)
    if kind is None:
        return ""
    return json.dumps(_any_value_to_json(value), separators=(",", ":"), ensure_ascii=False)


def _any_value_to_json(value: AnyValue, depth: int = 0) -> object:
    kind = value.WhichOneof("value")
    if depth > 16:
        return "...[nesting too deep]"
    if kind == "array_value":
        return [_any_value_to_json(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value_to_json(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_value":
        return value.string_value
    return None


def _attributes(kvs: object, limits: DecodeLimits, batch: DecodedBatch) -> dict[str, str]:
    out = {kv.key: any_value_to_str(kv.value) for kv in kvs}  # type: ignore[attr-defined]
    if len(out) > limits.max_attributes:
        keep = [k for k in out if k.startswith(_PRIORITY_PREFIXES)][: limits.max_attributes]
        room = limits.max_attributes - len(keep)
        if room > 0:
            kept = set(keep)
            keep.extend([k for k in out if k not in kept][:room])
        batch.truncated_attributes += len(out) - len(keep)
        out = {k: out[k] for k in keep}
    max_bytes = limits.max_value_bytes
    for key, text in out.items():
        if len(text) > max_bytes // 4 and len(text.encode()) > max_bytes:
            cut = text.encode()[: max_bytes - len(TRUNCATED_SUFFIX)].decode("utf-8", "ignore")
            out[key] = cut + TRUNCATED_SUFFIX
            batch.truncated_attributes += 1
    return out


def decode_spans(request: ExportTraceServiceRequest, limits: DecodeLimits) -> DecodedBatch:
    """Turn every span of ``request`` into a record, or a counted rejection."""
    batch = DecodedBatch()
    records = batch.records
    tenant_key = limits.tenant_attribute
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, limits, batch)
        service = resource.get("service.name", "unknown_service")
        tenant = resource.get(tenant_key, "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if len(trace_id) != 16 or len(span_id) != 8:
                    batch.reject("invalid_id", f"span {span.name!r}: trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                attributes = _attributes(span.attributes, limits, batch)
                records.append(SpanRecord(
                    trace_id=trace_id.hex(),
                    span_id=span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    start_time_ns=start,
                    duration_ns=end - start if end >= start else 0,
                    service_name=service,
                    span_name=span.name,
                    status_code=span.status.code,
                    resource_attributes=resource,
                    attributes=attributes,
                    tenant=tenant or attributes.get(tenant_key, ""),
                ))
    if batch.truncated_attributes:
        batch.messages.append(
            f"{batch.truncated_attributes} attribute(s) over the limits ({limits.max_attributes} per span, "
            f"{limits.max_value_bytes} bytes per value) were truncated; the spans were still priced and stored"
        )
    return batch
