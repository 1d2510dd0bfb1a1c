"""OTLP/JSON -> ExportTraceServiceRequest, and the bounded gzip inflation of OTLP/HTTP bodies."""

from __future__ import annotations

import copy
import gzip
import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.sources.otlp_http import TooLarge, gunzip_bounded
from llm_cost_tracker.sources.otlp_json import InvalidJson, _rewrite_ids, parse_json_request
from llm_cost_tracker.sources.otlp_json_direct import Unusual, parse_direct
from llm_cost_tracker.testing import genai_attributes, make_request, make_span, otlp_json

# The example of the OTLP specification's JSON encoding (hex ids, int64 as strings, enums as integers).
SPEC_EXAMPLE = {
    "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                      "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
            "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
                "parentSpanId": "EEE19B7EC3C1B173", "name": "I'm a server span",
                "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000",
                "kind": 2,
                "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}},
                               {"key": "n", "value": {"intValue": "9007199254740993"}},
                               {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": True}]}}}],
                "links": [{"traceId": "5B8EFFF798038103D269B633813FC60D", "spanId": "EEE19B7EC3C1B175"}],
                "status": {"code": 2, "message": "boom"},
                "aFieldFromTheFuture": {"x": 1},
            }],
        }],
    }],
}


def test_the_specification_example_parses_with_hex_ids_int64_strings_and_enum_ints() -> None:
    request = parse_json_request(json.dumps(SPEC_EXAMPLE).encode())
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174" and span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.kind == 2 and span.status.code == 2
    assert span.attributes[1].value.int_value == 9007199254740993  # past a double's integers: read as a string
    assert span.links[0].trace_id.hex() == "5b8efff798038103d269b633813fc60d"
    assert request.resource_spans[0].resource.attributes[0].value.string_value == "my.service"


def test_a_request_and_its_json_encoding_parse_to_the_same_message() -> None:
    spans = [make_span(genai_attributes(model=m, input_tokens=i)) for i, m in enumerate(["gpt-4o", "o3-mini"], 7)]
    request = make_request(spans, {"service.name": "chatbot", "tenant.id": "acme"})
    assert parse_json_request(otlp_json(request)) == request


@pytest.mark.parametrize("body, where", [
    (b"[]", "JSON object"),
    (b'{"resourceSpans": [', "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}', "is not hex"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":12}]}]}]}', "must be a hex string"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\\ud800"}]}]}]}', "ExportTraceServiceRequest"),
    (b'{"resourceSpans": 5}', "cannot parse resourceSpans"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
])
def test_what_is_not_an_otlp_json_request_is_refused_saying_where(body: bytes, where: str) -> None:
    with pytest.raises(InvalidJson, match=where):
        parse_json_request(body)


def test_a_refusal_never_quotes_the_value_it_could_not_parse() -> None:
    secret = "sk-proj-Abcdefghijklmnop1234567890"
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"attributes": [{"key": "k", "value": {"intValue": secret}}]}]}]}]}).encode()
    with pytest.raises(InvalidJson) as refused:
        parse_json_request(body)
    assert secret not in str(refused.value)
    assert "resourceSpans.scopeSpans.spans.attributes.value.intValue" in str(refused.value)


def test_gzip_inflation_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB in about 64 KiB
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge):
        gunzip_bounded(bomb, 1 << 20)
    assert gunzip_bounded(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000


def test_gzip_members_are_joined_and_corrupt_or_cut_bodies_refused() -> None:
    assert gunzip_bounded(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    with pytest.raises(TooLarge):
        gunzip_bounded(gzip.compress(b"ab") + gzip.compress(b"cd"), 3)
    whole = gzip.compress(b"hello world" * 100)
    with pytest.raises(ValueError, match="truncated"):
        gunzip_bounded(whole[: len(whole) // 2], 1 << 20)
    with pytest.raises(ValueError, match="corrupt"):
        gunzip_bounded(b"not gzip at all", 1 << 20)


def _reference(document: dict[str, Any]) -> ExportTraceServiceRequest | None:
    """protobuf's own reading of the JSON mapping (ids rewritten from hex), or None when it refuses."""
    document = copy.deepcopy(document)
    try:
        _rewrite_ids(document)
        request = ExportTraceServiceRequest()
        json_format.ParseDict(document, request, ignore_unknown_fields=True, max_recursion_depth=100)
        return request
    except Exception:
        return None


def _value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if rng.random() < 0.01:
        return {"bytesValue": "AAEC"}  # base64: left to the reference parser
    kind = rng.choice(["s", "s", "i", "b", "d", "a", "k", "e"] if depth < 4 else ["s", "i", "b", "d"])
    if kind == "s":
        return {"stringValue": rng.choice(["", "gpt-4o", "ünïcødé ✓", "x" * rng.randrange(50)])}
    if kind == "i":
        return {"intValue": rng.choice([str(rng.randrange(-2**63, 2**63)), rng.randrange(-1000, 1000)])}
    if kind == "b":
        return {"boolValue": rng.random() < 0.5}
    if kind == "d":
        return {"doubleValue": rng.choice([0.25, -1e300, 3, rng.random()])}
    if kind == "a":
        return {"arrayValue": {"values": [_value(rng, depth + 1) for _ in range(rng.randrange(3))]}}
    if kind == "k":
        return {"kvlistValue": {"values": [{"key": f"k{i}", "value": _value(rng, depth + 1)} for i in range(2)]}}
    return {}


def _attrs(rng: random.Random) -> list[dict[str, Any]]:
    return [{"key": f"a{i}", "value": _value(rng)} for i in range(rng.randrange(4))]


def _document(rng: random.Random) -> dict[str, Any]:
    def span() -> dict[str, Any]:
        doc: dict[str, Any] = {"traceId": rng.randbytes(16).hex(), "spanId": rng.randbytes(8).hex(),
                               "name": "chat", "kind": rng.choice([1, 3, "SPAN_KIND_CLIENT", 9]),
                               "startTimeUnixNano": str(rng.randrange(2**64)), "endTimeUnixNano": rng.randrange(2**53),
                               "attributes": _attrs(rng), "status": {"code": rng.choice([0, 2, "STATUS_CODE_ERROR"]),
                                                                     "message": "m"}}
        if rng.random() < 0.3:
            doc["parentSpanId"] = rng.choice(["", rng.randbytes(8).hex().upper()])
        if rng.random() < 0.3:
            doc["events"] = [{"timeUnixNano": "5", "name": "e", "attributes": _attrs(rng),
                              "droppedAttributesCount": 1}]
        if rng.random() < 0.3:
            doc["links"] = [{"traceId": rng.randbytes(16).hex(), "spanId": rng.randbytes(8).hex(), "traceState": "a=b",
                             "flags": 256, "attributes": _attrs(rng)}]
        if rng.random() < 0.2:
            doc.update(droppedAttributesCount=2, droppedEventsCount=3, droppedLinksCount=4, flags=1, traceState="x=y")
        return doc

    return {"resourceSpans": [{"resource": {"attributes": _attrs(rng), "droppedAttributesCount": 0},
                               "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
                               "scopeSpans": [{"scope": {"name": "s", "version": "1", "attributes": _attrs(rng)},
                                               "spans": [span() for _ in range(rng.randrange(1, 4))]}]}
                              for _ in range(rng.randrange(1, 3))]}


def _mutate(rng: random.Random, node: Any) -> None:
    """Replace one value somewhere in ``node`` by a value of another type, or add a field."""
    containers = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            containers.append(n)
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    target = rng.choice(containers)
    key = rng.choice([*target, "spans", "trace_id", "unknownField", "value"])
    target[key] = rng.choice([None, True, 1.5, -1, 2**70, "zz", "", [], {}, [1], {"stringValue": 1},
                              "\ud800", "NaN", {"intValue": "1", "boolValue": True}])


def test_the_direct_path_builds_what_protobufs_parser_builds() -> None:
    rng = random.Random(17)
    direct = 0
    for _ in range(400):
        document = _document(rng)
        expected = _reference(document)
        assert expected is not None
        try:
            got = parse_direct(copy.deepcopy(document))
        except Unusual:
            continue  # bytes values: the reference decides, as parse_json_request does
        direct += 1
        assert got == expected
    assert direct > 150  # most documents take the direct path


def test_the_direct_path_never_accepts_what_protobufs_parser_refuses() -> None:
    rng = random.Random(23)
    checked = 0
    for _ in range(3000):
        document = _document(rng)
        for _ in range(rng.randrange(1, 3)):
            _mutate(rng, document)
        try:
            got = parse_direct(copy.deepcopy(document))
        except Unusual:
            continue
        checked += 1
        assert got == _reference(document), json.dumps(document, default=str)[:2000]
        assert parse_json_request(json.dumps(document).encode()) == got
    assert checked > 40  # mutations that keep the document valid (e.g. an empty list, a dropped value)
