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

from llm_cost_tracker.types import AttributeColumns, SpanRecord

__all__ = ["DecodeError", "DecodeLimits", "DecodedBatch", "LimitExceeded", "any_value_to_str", "check_counts",
           "check_request", "decode_spans", "finish", "parse_request", "render_value"]

_PRIORITY_PREFIXES = ("gen_ai.", "llm.", "openinference.", "tenant.", "service.")
TRUNCATED_SUFFIX = "...[truncated]"
TOO_DEEP = "...[nesting too deep]"
MAX_START_NS = 2**63 - 1
"""Latest start time the table's nanosecond timestamp holds (2262-04-11)."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one span may store (the span is still priced when they are exceeded)."""

    max_attributes: int = 1024
    max_value_bytes: int = 65_536
    tenant_attribute: str = "tenant.id"
    max_spans: int = 65_536
    """Spans in one request; more rejects the whole request (:class:`LimitExceeded`)."""
    max_request_attributes: int = 1_048_576
    """Span and resource attributes in one request; more rejects the whole request."""
    max_depth: int = 16
    """Nesting of arrays/kvlists in one AnyValue; deeper parts are replaced by a marker (counted as truncated)."""
    max_key_bytes: int = 256
    """Bytes of UTF-8 in an attribute key; an attribute with a longer key is dropped (counted as truncated):
    keys are remembered by later stages, and no convention's key comes near this."""


class LimitExceeded(ValueError):
    """A whole request is over a per-request limit; the message says which and how to fix it."""


@dataclass(slots=True)
class DecodedBatch:
    """What one Export request turned into."""

    records: list[SpanRecord] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    """Spans not accepted, by reason."""
    truncated_attributes: int = 0
    long_keys: int = 0
    """Attributes dropped for a key over ``max_key_bytes`` (also counted in ``truncated_attributes``)."""
    messages: list[str] = field(default_factory=list)
    columns: AttributeColumns | None = field(default=None, compare=False, repr=False)
    """The records' attributes as columns, when the wire scan decoded the request (``otlp_records``): a
    way to read them, not part of what was decoded (two decoders agree when their records do)."""

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


def any_value_to_str(value: AnyValue, max_depth: int = 16, max_items: int = 65_536) -> str:
    """Render an attribute value as the string stored in the Map columns.

    Args:
        value: the OTLP value.
        max_depth: arrays/kvlists nested deeper are rendered as ``"...[nesting too deep]"``.
        max_items: elements rendered before the rest is cut (the text is cut at the byte limit anyway).
    """
    return _render(value, max_depth, max_items)[0]


def _render(value: AnyValue, max_depth: int, max_items: int) -> tuple[str, bool]:
    """``(text, cut)``: the rendering and whether depth or size cut anything out of it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value, False
    if kind == "int_value":
        return str(value.int_value), False
    if kind == "bool_value":
        return ("true" if value.bool_value else "false"), False
    if kind == "double_value":
        return repr(value.double_value), False
    if kind is None:
        return "", False
    state = _JsonState(max_depth, max_items)
    text = json.dumps(state.convert(value, 0), separators=(",", ":"), ensure_ascii=False)
    return text, state.cut


class _JsonState:
    """AnyValue -> JSON-able object with a depth cap and an element budget (so a huge array costs O(budget))."""

    __slots__ = ("max_depth", "budget", "cut")

    def __init__(self, max_depth: int, max_items: int) -> None:
        self.max_depth = max_depth
        self.budget = max_items
        self.cut = False

    def convert(self, value: AnyValue, depth: int) -> object:
        kind = value.WhichOneof("value")
        if kind in ("array_value", "kvlist_value"):
            if depth >= self.max_depth:
                self.cut = True
                return TOO_DEEP
            if kind == "array_value":
                items: list[object] = []
                for v in value.array_value.values:
                    if self.budget <= 0:
                        self.cut = True
                        break
                    self.budget -= 1
                    items.append(self.convert(v, depth + 1))
                return items
            pairs: dict[str, object] = {}
            for kv in value.kvlist_value.values:
                if self.budget <= 0:
                    self.cut = True
                    break
                self.budget -= 1
                pairs[kv.key] = self.convert(kv.value, depth + 1)
            return pairs
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


def check_request(request: ExportTraceServiceRequest, limits: DecodeLimits) -> int:
    """The number of spans in ``request`` (counted, not decoded: cheap enough to come before rate limits);
    raises :class:`LimitExceeded` when it holds too many spans or attributes in all."""
    spans = attributes = 0
    for resource_spans in request.resource_spans:
        attributes += len(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            spans += len(scope_spans.spans)
    check_counts(spans, 0, limits)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes += len(span.attributes)
    return check_counts(spans, attributes, limits)


def check_counts(spans: int, attributes: int, limits: DecodeLimits) -> int:
    """``spans``, or :class:`LimitExceeded` when a request's ``spans`` or span and resource ``attributes`` in
    all are over the limits (the spans are checked first: counting them is cheaper)."""
    if spans > limits.max_spans:
        raise LimitExceeded(
            f"request holds {spans} spans, over the limit of {limits.max_spans} per request "
            f"(--max-spans-per-request); send smaller batches (collector: send_batch_max_size)")
    if attributes > limits.max_request_attributes:
        raise LimitExceeded(
            f"request holds {attributes} attributes, over the limit of {limits.max_request_attributes} per "
            f"request (--max-attributes-per-request); send smaller batches")
    return spans


_SMALL_VALUE_BYTES = 256
_RENDERED: dict[tuple[bytes, int, int], str] = {}
_RENDERED_LIMIT = 4096


def render_value(value: AnyValue, max_depth: int, max_items: int, batch: DecodedBatch) -> str:
    """``_render`` for arrays, kvlists and bytes, remembering small values (``finish_reasons: ["stop"]``
    arrives on nearly every span, and JSON rendering costs more than the rest of the attribute)."""
    wire = value.SerializeToString()
    small = len(wire) <= _SMALL_VALUE_BYTES
    if small:
        text = _RENDERED.get((wire, max_depth, max_items))
        if text is not None:
            return text
    text, cut = _render(value, max_depth, max_items)
    if cut:
        batch.truncated_attributes += 1
    elif small:
        if len(_RENDERED) >= _RENDERED_LIMIT:
            _RENDERED.clear()
        _RENDERED[(wire, max_depth, max_items)] = text
    return text


def _attributes(kvs: object, limits: DecodeLimits, batch: DecodedBatch) -> dict[str, str]:
    out: dict[str, str] = {}
    # Enough elements to fill max_value_bytes (each takes >= 1 byte), so the stored prefix is unchanged.
    max_depth, max_items = limits.max_depth, limits.max_value_bytes
    max_bytes = limits.max_value_bytes
    quarter = max_bytes // 4
    long = False
    for kv in kvs:  # type: ignore[attr-defined]
        value = kv.value
        # the scalar kinds inline, a non-empty string (most values) without asking which kind it is: this
        # loop runs for every attribute of every span
        text = value.string_value
        if not text and (number := value.int_value):  # a non-zero int (token counts): no WhichOneof
            text = str(number)
        elif not text:
            kind = value.WhichOneof("value")
            if kind == "int_value":
                text = "0"
            elif kind == "double_value":
                text = repr(value.double_value)
            elif kind == "bool_value":
                text = "true" if value.bool_value else "false"
            elif kind != "string_value":
                text = render_value(value, max_depth, max_items, batch)
        out[kv.key] = text
        if len(text) > quarter:
            long = True  # may be over max_bytes once encoded: checked below
    if out and max(map(len, out)) > limits.max_key_bytes // 4:  # one C loop; may be over once encoded
        for key in [k for k in out if len(k.encode("utf-8", "surrogatepass")) > limits.max_key_bytes]:
            del out[key]
            batch.long_keys += 1
            batch.truncated_attributes += 1
    if len(out) > limits.max_attributes:
        keep = [k for k in out if k.startswith(_PRIORITY_PREFIXES)][: limits.max_attributes]
        room = limits.max_attributes - len(keep)
        if room > 0:
            kept = set(keep)
            keep.extend([k for k in out if k not in kept][:room])
        batch.truncated_attributes += len(out) - len(keep)
        out = {k: out[k] for k in keep}
    if long:
        for key, text in out.items():
            if len(text) > quarter and len(text.encode()) > max_bytes:
                cut = text.encode()[: max_bytes - len(TRUNCATED_SUFFIX)].decode("utf-8", "ignore")
                out[key] = cut + TRUNCATED_SUFFIX
                batch.truncated_attributes += 1
    return out


def _cut(text: str, max_bytes: int, batch: DecodedBatch) -> str:
    """``text`` within ``max_bytes`` of UTF-8 (cut at a character boundary and marked; counted as truncated)."""
    if len(text) <= max_bytes // 4 or len(text.encode()) <= max_bytes:
        return text
    batch.truncated_attributes += 1
    return text.encode()[: max_bytes - len(TRUNCATED_SUFFIX)].decode("utf-8", "ignore") + TRUNCATED_SUFFIX


def decode_spans(request: ExportTraceServiceRequest, limits: DecodeLimits, checked: bool = False) -> DecodedBatch:
    """Turn every span of ``request`` into a record, or a counted rejection.

    Raises :class:`LimitExceeded` (nothing decoded) when the request is over a per-request limit, unless
    ``checked`` says :func:`check_request` has passed it already.
    """
    if not checked:
        check_request(request, limits)
    batch = DecodedBatch()
    records = batch.records
    tenant_key = limits.tenant_attribute
    position = -1
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, limits, batch)
        service = resource.get("service.name", "unknown_service")
        tenant = resource.get(tenant_key, "")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name[:256]  # client input: bounded like other names
            for span in scope_spans.spans:
                position += 1
                trace_id = span.trace_id
                span_id = span.span_id
                if len(trace_id) != 16 or len(span_id) != 8:
                    # messages name a span by its position, never by its name: a name is the client's text,
                    # and may hold a secret (names are scanned later, on records)
                    batch.reject("invalid_id", f"span #{position}: trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if start > MAX_START_NS:
                    batch.reject("invalid_timestamp", f"span #{position}: start time {start} ns is past 2262")
                    continue
                attributes = _attributes(span.attributes, limits, batch)
                status = span.status.code
                records.append(SpanRecord(  # positional (a third cheaper than keywords, once per span)
                    trace_id.hex(),  # trace_id
                    span_id.hex(),  # span_id
                    span.parent_span_id.hex(),  # parent_span_id
                    start,  # start_time_ns
                    end - start if end >= start else 0,  # duration_ns
                    service,  # service_name
                    _cut(span.name, limits.max_value_bytes, batch),  # span_name
                    status if 0 <= status <= 2 else 0,  # status_code (an open enum: unknown = Unset)
                    resource,  # resource_attributes
                    attributes,  # attributes
                    tenant or attributes.get(tenant_key, ""),  # tenant
                ))
                if scope_name:
                    records[-1].scope_name = scope_name
    return finish(batch, limits)


def finish(batch: DecodedBatch, limits: DecodeLimits) -> DecodedBatch:
    """``batch`` with the messages that say what the limits cut (the client reads them in partial_success)."""
    if batch.truncated_attributes:
        batch.messages.append(
            f"{batch.truncated_attributes} attribute(s) over the limits ({limits.max_attributes} per span, "
            f"{limits.max_value_bytes} bytes per value, nesting depth {limits.max_depth}) were truncated; "
            "the spans were still priced and stored"
        )
    if batch.long_keys:
        batch.messages.append(f"{batch.long_keys} of them had a key over {limits.max_key_bytes} bytes and were "
                              "dropped (--max-attribute-key-bytes)")
    return batch
