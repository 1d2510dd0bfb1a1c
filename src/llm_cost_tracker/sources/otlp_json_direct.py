"""OTLP/JSON documents of the usual shape -> ExportTraceServiceRequest, directly (the fast path).

``json_format.ParseDict`` is the reference reading of the JSON mapping, but it walks the message
descriptors in Python and costs ~400 us per span: four times the rest of ingest. This module reads
the shape OTLP exporters send (lowerCamelCase names, ids as hex strings, int64 as strings or numbers,
enums as integers, the trace fields of OTLP 1.x) straight into the message, and raises
:class:`Unusual` at the first thing it does not handle (an unknown or snake_case field, an enum by
name, a non-finite double, bytes, a wrong type, deep nesting, a string protobuf refuses): the caller
then parses the document with ``ParseDict``, whose answer (or error) is the one that counts. So the
fast path never accepts what the reference refuses, and where it accepts, it builds the same message
(``tests/sources/test_otlp_json.py`` compares the two).

Pure; reads the document without changing it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["Unusual", "parse_direct"]

_U64 = 2**64 - 1
_I64 = 2**63
_U32 = 2**32 - 1
_I32 = 2**31
_MAX_DEPTH = 90
"""Array/kvlist nesting followed here; deeper documents go to the reference parser (limit 100 messages)."""

_REQUEST = frozenset({"resourceSpans"})
_RESOURCE_SPANS = frozenset({"resource", "scopeSpans", "schemaUrl"})
_RESOURCE = frozenset({"attributes", "droppedAttributesCount"})
_SCOPE_SPANS = frozenset({"scope", "spans", "schemaUrl"})
_SCOPE = frozenset({"name", "version", "attributes", "droppedAttributesCount"})
_SPAN = frozenset({"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind", "startTimeUnixNano",
                   "endTimeUnixNano", "attributes", "droppedAttributesCount", "events", "droppedEventsCount", "links",
                   "droppedLinksCount", "status"})
_EVENT = frozenset({"timeUnixNano", "name", "attributes", "droppedAttributesCount"})
_LINK = frozenset({"traceId", "spanId", "traceState", "attributes", "droppedAttributesCount", "flags"})
_STATUS = frozenset({"message", "code"})
_KEY_VALUE = frozenset({"key", "value"})


class Unusual(Exception):
    """The document is not of the shape read here; parse it with the reference parser."""


def _obj(value: Any, known: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict or not known.issuperset(value):
        raise Unusual
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise Unusual
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise Unusual
    return value


def _int(value: Any, low: int, high: int) -> int:
    """An integer field: a JSON number without a fraction, or a string of decimal digits (int64 as text)."""
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and (value.isdigit() or (value[:1] == "-" and value[1:].isdigit())):
        number = int(value)
    else:
        raise Unusual
    if not low <= number <= high:
        raise Unusual
    return number


_KINDS: dict[str, int] = {name: int(number) for name, number in Span.SpanKind.items()}
_CODES: dict[str, int] = {name: int(number) for name, number in Status.StatusCode.items()}


def _enum(value: Any, names: dict[str, int]) -> int:
    """An enum field: its number (the OTLP encoding), or its name as protobuf's JSON mapping writes it."""
    if type(value) is str and value in names:
        return names[value]
    return _int(value, -_I32, _I32 - 1)


def _hex(value: Any) -> bytes:
    if type(value) is not str or not value.isascii():
        raise Unusual
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Unusual from None


def _any(doc: Any, out: AnyValue, depth: int) -> None:
    if type(doc) is not dict or len(doc) > 1:
        raise Unusual
    out.SetInParent()
    for kind, value in doc.items():
        if kind == "stringValue":
            out.string_value = _str(value)
        elif kind == "intValue":
            out.int_value = _int(value, -_I64, _I64 - 1)
        elif kind == "boolValue":
            if type(value) is not bool:
                raise Unusual
            out.bool_value = value
        elif kind == "doubleValue":
            if type(value) is float or type(value) is int:
                out.double_value = value
            else:
                raise Unusual  # "NaN", "Infinity" and the like: the reference parser reads them
        elif kind in ("arrayValue", "kvlistValue"):
            if depth >= _MAX_DEPTH:
                raise Unusual
            items = _list(_obj(value, frozenset({"values"})).get("values"))
            if kind == "arrayValue":
                array = out.array_value
                array.SetInParent()
                for item in items:
                    _any(item, array.values.add(), depth + 1)
            else:
                kvlist = out.kvlist_value
                kvlist.SetInParent()
                _attributes(items, kvlist.values, depth + 1)
        else:
            raise Unusual  # bytesValue (base64 variants) and unknown kinds


def _attributes(items: Any, out: Any, depth: int = 0) -> None:
    for item in _list(items):
        kv_doc = _obj(item, _KEY_VALUE)
        kv: KeyValue = out.add()
        kv.key = _str(kv_doc.get("key", ""))
        value = kv_doc.get("value")
        if value is not None:
            _any(value, kv.value, depth)


def _scope(doc: dict[str, Any], out: InstrumentationScope) -> None:
    out.SetInParent()
    if "name" in doc:
        out.name = _str(doc["name"])
    if "version" in doc:
        out.version = _str(doc["version"])
    _attributes(doc.get("attributes"), out.attributes)
    if "droppedAttributesCount" in doc:
        out.dropped_attributes_count = _int(doc["droppedAttributesCount"], 0, _U32)


def _span(doc: dict[str, Any], span: Span) -> None:
    get = doc.get
    if "traceId" in doc:
        span.trace_id = _hex(doc["traceId"])
    if "spanId" in doc:
        span.span_id = _hex(doc["spanId"])
    if "parentSpanId" in doc:
        span.parent_span_id = _hex(doc["parentSpanId"])
    if "traceState" in doc:
        span.trace_state = _str(doc["traceState"])
    if "flags" in doc:
        span.flags = _int(doc["flags"], 0, _U32)
    if "name" in doc:
        span.name = _str(doc["name"])
    if "kind" in doc:
        span.kind = _enum(doc["kind"], _KINDS)  # type: ignore[assignment, unused-ignore]
    if "startTimeUnixNano" in doc:
        span.start_time_unix_nano = _int(doc["startTimeUnixNano"], 0, _U64)
    if "endTimeUnixNano" in doc:
        span.end_time_unix_nano = _int(doc["endTimeUnixNano"], 0, _U64)
    _attributes(get("attributes"), span.attributes)
    for name in ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"):
        if name in doc:
            setattr(span, _SNAKE[name], _int(doc[name], 0, _U32))
    for event_doc in _list(get("events")):
        event_doc = _obj(event_doc, _EVENT)
        event = span.events.add()
        if "timeUnixNano" in event_doc:
            event.time_unix_nano = _int(event_doc["timeUnixNano"], 0, _U64)
        if "name" in event_doc:
            event.name = _str(event_doc["name"])
        _attributes(event_doc.get("attributes"), event.attributes)
        if "droppedAttributesCount" in event_doc:
            event.dropped_attributes_count = _int(event_doc["droppedAttributesCount"], 0, _U32)
    for link_doc in _list(get("links")):
        link_doc = _obj(link_doc, _LINK)
        link = span.links.add()
        if "traceId" in link_doc:
            link.trace_id = _hex(link_doc["traceId"])
        if "spanId" in link_doc:
            link.span_id = _hex(link_doc["spanId"])
        if "traceState" in link_doc:
            link.trace_state = _str(link_doc["traceState"])
        if "flags" in link_doc:
            link.flags = _int(link_doc["flags"], 0, _U32)
        _attributes(link_doc.get("attributes"), link.attributes)
        if "droppedAttributesCount" in link_doc:
            link.dropped_attributes_count = _int(link_doc["droppedAttributesCount"], 0, _U32)
    status = get("status")
    if status is not None:
        status = _obj(status, _STATUS)
        span.status.SetInParent()
        if "message" in status:
            span.status.message = _str(status["message"])
        if "code" in status:
            span.status.code = _enum(status["code"], _CODES)  # type: ignore[assignment, unused-ignore]


_SNAKE = {"droppedAttributesCount": "dropped_attributes_count", "droppedEventsCount": "dropped_events_count",
          "droppedLinksCount": "dropped_links_count"}


def parse_direct(document: Any) -> ExportTraceServiceRequest:
    """The request ``document`` (a parsed JSON object) encodes; raises :class:`Unusual` when it is not of
    the shape read here (the caller then asks the reference parser)."""
    request = ExportTraceServiceRequest()
    try:
        for rs_doc in _list(_obj(document, _REQUEST).get("resourceSpans")):
            rs_doc = _obj(rs_doc, _RESOURCE_SPANS)
            resource_spans = request.resource_spans.add()
            resource = rs_doc.get("resource")
            if resource is not None:
                resource = _obj(resource, _RESOURCE)
                resource_spans.resource.SetInParent()
                _attributes(resource.get("attributes"), resource_spans.resource.attributes)
                if "droppedAttributesCount" in resource:
                    resource_spans.resource.dropped_attributes_count = _int(resource["droppedAttributesCount"], 0, _U32)
            if "schemaUrl" in rs_doc:
                resource_spans.schema_url = _str(rs_doc["schemaUrl"])
            for ss_doc in _list(rs_doc.get("scopeSpans")):
                ss_doc = _obj(ss_doc, _SCOPE_SPANS)
                scope_spans = resource_spans.scope_spans.add()
                scope = ss_doc.get("scope")
                if scope is not None:
                    _scope(_obj(scope, _SCOPE), scope_spans.scope)
                if "schemaUrl" in ss_doc:
                    scope_spans.schema_url = _str(ss_doc["schemaUrl"])
                add = scope_spans.spans.add
                for span_doc in _list(ss_doc.get("spans")):
                    _span(_obj(span_doc, _SPAN), add())
    except (ValueError, TypeError, OverflowError):  # e.g. a lone surrogate protobuf will not encode
        raise Unusual from None
    return request
