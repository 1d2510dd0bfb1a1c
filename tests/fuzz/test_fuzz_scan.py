"""The wire scan (``otlp_scan`` + ``otlp_records``) against protobuf, the reference decoder.

Whatever the bytes, the scan either declines (protobuf decides) or gives exactly what protobuf and
``decode_spans`` give: the same records, rejections, messages and request-limit errors. And it must not
decline what real exporters send, or the receiver would pay for both decoders.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llm_cost_tracker.sources import otlp_scan
from llm_cost_tracker.sources.otlp_decode import (
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    decode_spans,
    parse_request,
)
from llm_cost_tracker.sources.otlp_records import decode_scan
from llm_cost_tracker.sources.otlp_scan import scan_request
from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from tests.fuzz.test_fuzz_decode import FUZZ, SMALL, deep_value, mutate, requests
from tests.sources.test_otlp_numbering import columns_describe_the_records

Outcome = DecodedBatch | str | None
"""A decoder's answer: the batch, the text of a refusal (malformed or over a request limit), or None
(the scan declined)."""


def reference(payload: bytes, limits: DecodeLimits) -> DecodedBatch | str:
    try:
        return decode_spans(parse_request(payload), limits)
    except (DecodeError, LimitExceeded) as exc:
        return f"{type(exc).__name__}: {exc}" if isinstance(exc, LimitExceeded) else "DecodeError"


def scanned(payload: bytes, limits: DecodeLimits) -> Outcome:
    try:
        scan = scan_request(payload, limits)
    except LimitExceeded as exc:
        return f"LimitExceeded: {exc}"
    return None if scan is None else decode_scan(scan, payload, limits)


def agree(payload: bytes, limits: DecodeLimits) -> Outcome:
    """The scan's outcome, after checking it is the reference's whenever the scan answers."""
    fast = scanned(payload, limits)
    if fast is not None:
        assert fast == reference(payload, limits)
    return fast


@FUZZ
@given(requests())
def test_scan_gives_the_reference_records(request: ExportTraceServiceRequest) -> None:
    """Random well-formed requests (odd text, ids, times, nested values): the scan answers, and as protobuf does
    (its attribute columns describing its records)."""
    payload = request.SerializeToString()
    assert scan_request(payload, DecodeLimits(max_spans=10**6, max_request_attributes=10**9)) is not None  # never left to protobuf
    outcome = agree(payload, DecodeLimits())
    if isinstance(outcome, DecodedBatch):
        columns_describe_the_records(payload, outcome)
    expected = reference(payload, DecodeLimits())
    # only what a per-value limit cuts is left to protobuf (a long key, value or name; too many attributes)
    assert outcome is not None or (isinstance(expected, DecodedBatch) and expected.truncated_attributes)
    agree(payload, SMALL)


@FUZZ
@given(requests(), st.randoms(use_true_random=False))
def test_scan_of_mutated_bytes_declines_or_agrees(request: ExportTraceServiceRequest, rng: random.Random) -> None:
    """Flipped, dropped or duplicated bytes: the scan declines whatever protobuf refuses, else agrees."""
    agree(mutate(request.SerializeToString(), rng), DecodeLimits())


@FUZZ
@given(st.binary(max_size=2000))
def test_scan_of_random_bytes_declines_or_agrees(payload: bytes) -> None:
    agree(payload, DecodeLimits())


@pytest.mark.parametrize("payload", [
    b"\x80\x80\x80\x80\x10\x00",  # a tag of 2**32 (field 2**29): found by the random-bytes test above
    b"\xf8\xff\xff\xff\x7f\x00",  # the largest five-byte tag (2**35 - 8): beyond uint32
    b"\xf8\xff\xff\xff\x0f\x00",  # the largest valid tag (field 2**29 - 1, a varint): skipped as unknown
])
def test_scan_reads_a_tag_as_32_bits_as_protobuf_does(payload: bytes) -> None:
    """A tag is a uint32 to upb: a five-byte varint over 2**32 - 1 is malformed, not an unknown field."""
    agree(payload, DecodeLimits())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _request_of(span_bytes: bytes, resource_spans_extra: bytes = b"") -> bytes:
    return _field(1, _field(2, _field(2, span_bytes)) + resource_spans_extra)


GOOD_SPAN = make_span({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10}).SerializeToString()


@pytest.mark.parametrize(("case", "payload", "answered"), [
    ("bad UTF-8 in an event's name (a message the scan only checks)",
     _request_of(GOOD_SPAN + _field(11, _field(2, b"\xff"))), False),
    ("a surrogate in an event's name", _request_of(GOOD_SPAN + _field(11, _field(2, b"\xed\xa0\x80"))), False),
    ("an overlong encoding in a link's trace state", _request_of(GOOD_SPAN + _field(13, _field(3, b"\xc0\xaf"))), False),
    ("a surrogate in a nested kvlist key",
     _request_of(GOOD_SPAN + _field(9, _field(1, b"k") + _field(2, _field(6, _field(1, _field(1, b"\xed\xa0\x80")))))),
     False),
    ("the name as a varint: an unknown field to protobuf, so no name", _request_of(GOOD_SPAN + bytes([5 << 3, 7])), True),
    ("two status messages: protobuf merges them", _request_of(
        GOOD_SPAN + _field(15, Status(code=2).SerializeToString()) + _field(15, Status(message="x").SerializeToString())),
     False),
    ("a group", _request_of(GOOD_SPAN + _varint((30 << 3) | 3) + _varint((30 << 3) | 4)), False),
    ("unknown fields of every wire type", _request_of(
        GOOD_SPAN + _varint(40 << 3) + b"\5" + _varint((41 << 3) | 1) + b"\0" * 8 + _varint((42 << 3) | 5) + b"\0" * 4
        + _field(43, b"\xff\xff")), True),
    ("a resource after its scope spans",
     _request_of(GOOD_SPAN, _field(1, _field(1, KeyValue(key="service.name", value=AnyValue(string_value="svc"))
                                             .SerializeToString()))), True),
    ("a field number 0", _request_of(GOOD_SPAN + bytes([0, 0])), False),
    ("a length past the end", _request_of(GOOD_SPAN)[:-3], False),
    ("a key and a value over the limits, each given before a short one: protobuf keeps the last", _request_of(
        GOOD_SPAN + _field(9, _field(1, b"x" * 300) + _field(1, b"k") + _field(2, _field(1, b"v" * 70_000)
                                                                            + _field(1, b"v")))), True),
])
def test_edge_cases_decline_or_agree(case: str, payload: bytes, answered: bool) -> None:
    outcome = agree(payload, DecodeLimits())
    assert (outcome is not None) == answered, case


def _nested(depth: int) -> bytes:
    """An attribute whose value is an array in an array ... ``depth`` deep, as wire bytes."""
    value = _field(1, b"bottom")
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value -> ArrayValue.values
    return _field(9, _field(1, b"deep") + _field(2, value))


@pytest.mark.parametrize(("depth", "answered", "parses"), [(20, True, True), (40, False, True), (70, False, False)])
def test_deep_nesting_is_left_to_protobuf(depth: int, answered: bool, parses: bool) -> None:
    """Past the scan's depth protobuf decides: it parses 40 levels and refuses 70 (past its limit of 100)."""
    payload = _request_of(GOOD_SPAN + _nested(depth))
    assert (agree(payload, DecodeLimits()) is not None) == answered
    assert (reference(payload, DecodeLimits()) != "DecodeError") == parses


def test_values_protobuf_renders_are_rendered_once_but_counted_per_copy() -> None:
    """A value cut by the nesting limit on many spans counts one truncation per span, as the reference does."""
    spans = [make_span(genai_attributes()) for _ in range(5)]
    for span in spans:
        span.attributes.add(key="nested", value=deep_value(8))
    payload = make_request(spans).SerializeToString()
    outcome = agree(payload, DecodeLimits(max_depth=4))
    assert isinstance(outcome, DecodedBatch) and outcome.truncated_attributes == 5


def test_rejected_spans_as_the_reference_reports_them() -> None:
    spans = [make_span(genai_attributes()) for _ in range(8)]
    spans[2].trace_id = b"short"
    spans[5].start_time_unix_nano = 2**63 + 5
    outcome = agree(make_request(spans).SerializeToString(), DecodeLimits())
    assert isinstance(outcome, DecodedBatch)
    assert outcome.rejected == {"invalid_id": 1, "invalid_timestamp": 1} and len(outcome.records) == 6


def test_over_a_per_value_limit_the_reference_decides() -> None:
    """A value the limits cut is left to decode_spans (the scan gives None after the counts passed)."""
    payload = make_request([make_span({"gen_ai.prompt": "x" * 300})]).SerializeToString()
    assert scanned(payload, SMALL) is None
    assert isinstance(scanned(payload, DecodeLimits()), DecodedBatch)


def test_compiled_walk_equals_its_python_source() -> None:
    """The numba-compiled walk fills the same tables as its Python source (what the coverage run reads)."""
    payload = make_request([make_span(genai_attributes()), Span(name="other")],
                           {"service.name": "svc", "tenant.id": "t"}).SerializeToString()
    compiled = scan_request(payload, DecodeLimits())
    assert compiled is not None
    s = otlp_scan._SCHEMA
    buf = np.frombuffer(payload, np.uint8)
    counts = np.zeros(4, np.int64)
    tables = [np.empty_like(compiled.spans), np.empty_like(compiled.attributes), np.empty_like(compiled.resources),
              np.empty_like(compiled.scopes)]
    status = otlp_scan._walk.py_func(buf, s.kind, s.sub, s.action, s.repeated, otlp_scan._WIRE_TYPE, True, *tables,
                                     counts)
    assert status == otlp_scan.OK
    for ours, theirs in zip(tables, [compiled.spans, compiled.attributes, compiled.resources, compiled.scopes],
                            strict=True):
        assert np.array_equal(ours, theirs)


def test_tenant_from_the_resource_else_the_span() -> None:
    """The resource's tenant.id wins; without one, each span's own (as decode_spans reads them)."""
    own = make_span({**genai_attributes(), "tenant.id": "from-span"})
    plain = make_span(genai_attributes())
    with_resource = make_request([own, plain], {"service.name": "svc", "tenant.id": "from-resource"})
    without = make_request([own, plain], {"service.name": "svc"})
    both = ExportTraceServiceRequest(resource_spans=[*with_resource.resource_spans, *without.resource_spans])
    outcome = agree(both.SerializeToString(), DecodeLimits())
    assert isinstance(outcome, DecodedBatch)
    assert [r.tenant for r in outcome.records] == ["from-resource", "from-resource", "from-span", ""]


def _walked_by_python(payload: bytes, rows: tuple[int, int, int, int]) -> tuple[int, np.ndarray]:
    """The Python source of the walk filling tables of ``rows`` (spans, attributes, resources, scopes) rows."""
    s = otlp_scan._SCHEMA
    counts = np.zeros(4, np.int64)
    tables = [np.empty((n, width), np.int64) for n, width in zip(rows, (15, 8, 2, 3), strict=True)]
    status = otlp_scan._walk.py_func(np.frombuffer(payload, np.uint8), s.kind, s.sub, s.action, s.repeated,
                                     otlp_scan._WIRE_TYPE, True, *tables, counts)
    return status, counts


@pytest.mark.parametrize("table", range(4))
def test_a_walk_out_of_rows_says_full(table: int) -> None:
    """Filling stops with FULL when a table has no row left (spans, attributes, resources or scopes): the
    scan then counts the request and fills tables of its counts."""
    payload = make_request([make_span(genai_attributes()) for _ in range(3)],
                           {"service.name": "svc"}).SerializeToString()
    status, counts = _walked_by_python(payload, (100, 100, 100, 100))
    assert status == otlp_scan.OK
    rows = [100, 100, 100, 100]
    rows[table] = int(counts[table]) - 1
    assert _walked_by_python(payload, tuple(rows))[0] == otlp_scan.FULL  # type: ignore[arg-type]
    rows[table] += 1
    assert _walked_by_python(payload, tuple(rows))[0] == otlp_scan.OK  # type: ignore[arg-type]


@pytest.mark.parametrize(("case", "spans"), [
    ("attributes smaller than the first tables' guess (a key and a bool: 7 bytes)",
     [make_span({f"k{i}": True for i in range(200)})]),
    ("spans without ids, smaller than an accepted span", [Span(name="x") for _ in range(300)]),
    ("empty resources and scopes, two bytes each", None),
])
def test_requests_past_the_first_tables_are_counted_then_filled(case: str, spans: list[Span] | None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that does not fit the tables sized from its length gives the same answer (and the
    reference's) through the counting walk."""
    if spans is None:
        request = make_request([make_span({"a": 1})], {"service.name": "svc"})
        request.resource_spans[0].scope_spans.extend(ScopeSpans() for _ in range(100))
        request.resource_spans.extend(ResourceSpans() for _ in range(100))
    else:
        request = make_request(spans, {"service.name": "svc"})
    payload = request.SerializeToString()
    outcome = agree(payload, DecodeLimits())
    assert isinstance(outcome, DecodedBatch), case
    statuses: list[int] = []
    walk = otlp_scan._walk

    def spied(*args: object) -> int:
        statuses.append(walk(*args))  # type: ignore[arg-type]
        return statuses[-1]

    monkeypatch.setattr(otlp_scan, "_walk", spied)
    scan = scan_request(payload, DecodeLimits())
    assert statuses == [otlp_scan.FULL, otlp_scan.OK, otlp_scan.OK]  # filled, out of rows; counted; filled
    assert scan is not None
    expected = parse_request(payload)
    assert scan.span_count == sum(len(ss.spans) for rs in expected.resource_spans for ss in rs.scope_spans)
    assert len(scan.resources) == len(expected.resource_spans)


@pytest.mark.parametrize(("limits", "message"), [
    (DecodeLimits(max_spans=4), "request holds 5 spans, over the limit of 4"),
    (DecodeLimits(max_request_attributes=9), "request holds 11 attributes, over the limit of 9"),  # and service.name
    (DecodeLimits(max_spans=0), "request holds 5 spans, over the limit of 0"),
])
def test_request_limits_name_the_whole_count(limits: DecodeLimits, message: str) -> None:
    """The first tables hold at most the limits' rows, so a request over them is counted in full and its
    refusal names every span and attribute, as the reference's does."""
    payload = make_request([make_span({"a": 1, "b": "x"}) for _ in range(5)]).SerializeToString()
    with pytest.raises(LimitExceeded, match=message):
        scan_request(payload, limits)
    assert agree(payload, limits) == f"LimitExceeded: {reference(payload, limits)[len('LimitExceeded: '):]}"


_BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\xc3"]
_GOOD_UTF8 = [b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80"]


@pytest.mark.parametrize("where", ["key", "value", "name"])
def test_utf8_checked_at_every_position_of_the_eight_byte_steps(where: str) -> None:
    """ASCII is checked eight bytes per step: a bad or good multi-byte character at any position of a
    string of any length up to three steps is still found (or passed) as protobuf does."""
    for length in range(0, 26):
        for at in range(length + 1):
            for piece in _BAD_UTF8 + _GOOD_UTF8:
                text = b"a" * at + piece + b"b" * (length - at)
                if where == "key":
                    span = _field(9, _field(1, text) + _field(2, _field(1, b"v")))
                elif where == "value":
                    span = _field(9, _field(1, b"k") + _field(2, _field(1, text)))
                else:
                    span = _field(5, text)
                payload = _request_of(GOOD_SPAN + span)
                outcome = agree(payload, DecodeLimits())
                assert (outcome is not None) == (piece in _GOOD_UTF8), (where, text)
