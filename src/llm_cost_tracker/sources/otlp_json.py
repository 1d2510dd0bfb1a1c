"""OTLP/JSON trace payloads -> the same ``ExportTraceServiceRequest`` the protobuf path parses.

The OTLP JSON encoding is protobuf's JSON mapping with one exception: trace and span ids are hex
strings, not base64. Everything else is the mapping as protobuf's own parser reads it
(lowerCamelCase or original field names, int64 as strings or numbers, enums as integers or names),
so the ids are rewritten to base64 at the few places they occur and the document is handed to
``json_format.ParseDict``, the reference reading. Documents of the usual shape take a direct path
first (``otlp_json_direct``, ~10x faster), which hands anything it does not handle to the reference.
Unknown fields are ignored, as the OTLP specification asks of receivers.

Pure: bytes in, a message or :class:`InvalidJson` out. The error messages name where the document
is wrong, never a value from it (a value may hold a secret, and the message goes back to the client).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.sources.otlp_json_direct import Unusual, parse_direct

__all__ = ["InvalidJson", "MAX_RECURSION_DEPTH", "parse_json_request"]

MAX_RECURSION_DEPTH = 100
"""Nested messages the JSON parser follows: the same limit as protobuf's binary parser."""
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_LINK_ID_KEYS = ("traceId", "spanId", "trace_id", "span_id")
_FIELD = re.compile(r"Failed to parse (\w+) field")


class InvalidJson(ValueError):
    """The body is not an OTLP/JSON ExportTraceServiceRequest; the message says where, never what."""


def _hex_ids(holder: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        value = holder.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidJson(f"{where}.{key} must be a hex string")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise InvalidJson(f"{where}.{key} is not hex (OTLP/JSON ids are hex, not base64)") from None
        holder[key] = base64.b64encode(raw).decode("ascii")


def _list(holder: dict[str, Any], *keys: str) -> list[Any]:
    for key in keys:
        value = holder.get(key)
        if isinstance(value, list):
            return value
    return []


def _rewrite_ids(document: dict[str, Any]) -> None:
    """Hex ids -> base64, in place, at the paths where OTLP puts them (no recursion over the document)."""
    for r, resource_spans in enumerate(_list(document, "resourceSpans", "resource_spans")):
        if not isinstance(resource_spans, dict):
            continue
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", "scope_spans")):
            if not isinstance(scope_spans, dict):
                continue
            for n, span in enumerate(_list(scope_spans, "spans")):
                if not isinstance(span, dict):
                    continue
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _hex_ids(span, _ID_KEYS, where)
                for k, link in enumerate(_list(span, "links")):
                    if isinstance(link, dict):
                        _hex_ids(link, _LINK_ID_KEYS, f"{where}.links[{k}]")


def parse_json_request(payload: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON Export body; raises :class:`InvalidJson` when it is not one.

    Invalid UTF-8 (and strings that cannot be encoded as UTF-8, such as lone surrogates) is refused,
    as the protobuf parser refuses it.
    """
    try:
        document = json.loads(payload)
    except RecursionError:
        raise InvalidJson("JSON nested too deep") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise InvalidJson(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise InvalidJson("the body must be a JSON object (an ExportTraceServiceRequest)")
    try:
        return parse_direct(document)  # the usual shape, ~10x faster than ParseDict
    except Unusual:
        pass  # anything else: the reference parser decides
    _rewrite_ids(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True,
                              max_recursion_depth=MAX_RECURSION_DEPTH)
    except json_format.ParseError as exc:
        # protobuf's message quotes the offending value: keep only the path of fields it names
        path = ".".join(_FIELD.findall(str(exc)))[:300] or "the document"
        raise InvalidJson(f"not an OTLP/JSON ExportTraceServiceRequest: cannot parse {path}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidJson(f"not an OTLP/JSON ExportTraceServiceRequest ({type(exc).__name__})") from None
    return request
