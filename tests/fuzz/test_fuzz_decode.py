"""Property-based fuzzing of OTLP decoding: random bytes and random structured Export requests.

Whatever arrives, ``parse_request`` either parses or raises ``DecodeError``, and ``decode_spans``
either raises ``LimitExceeded`` (a whole-request limit) or accounts for every span as a record or a
counted rejection, with every limit honoured and records the table can store.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llm_cost_tracker.sources.otlp_decode import (
    TOO_DEEP,
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    any_value_to_str,
    decode_spans,
    parse_request,
)
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from llm_cost_tracker.transforms.usage import ExtractUsage

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
SMALL = DecodeLimits(max_attributes=8, max_value_bytes=256, max_spans=40, max_request_attributes=400, max_depth=4)

# Odd text: control characters, NULs, RTL marks, astral-plane emoji, long runs, digits of other scripts.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=200, max_size=2000),
    st.sampled_from(["", "\x00", "\u202e\u202d", "𝕏" * 300, "١٢٣", "9" * 5000, "-0", "NaN", "1e400", "é" * 700]),
)
leaf_values = st.one_of(
    odd_text.map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=300).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)


def _array(items: list[AnyValue]) -> AnyValue:
    out = AnyValue()
    out.array_value.values.extend(items)
    return out


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    out = AnyValue()
    out.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return out


any_values = st.recursive(
    leaf_values,
    lambda inner: st.one_of(st.lists(inner, max_size=6).map(_array),
                            st.lists(st.tuples(st.text(max_size=8), inner), max_size=6).map(_kvlist)),
    max_leaves=40,
)


def deep_value(depth: int, wide: bool = False) -> AnyValue:
    """Arrays nested ``depth`` deep (kvlists on odd levels)."""
    value = AnyValue(string_value="bottom")
    for level in range(depth):
        value = _kvlist([("k", value)]) if level % 2 else _array([value] * (3 if wide else 1))
    return value


keys = st.one_of(st.sampled_from(list(genai_attributes()) + ["tenant.id", "service.name", "gen_ai.prompt"]),
                 st.text(max_size=12))
attribute_lists = st.lists(st.tuples(keys, any_values), max_size=12)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))),
        span_id=draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))),
        parent_span_id=draw(st.binary(max_size=9)),
        name=draw(odd_text),
        start_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        end_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
    )
    span.status.code = draw(st.integers(-(2**31), 2**31 - 1))  # an open enum: any int32 arrives
    span.attributes.extend(KeyValue(key=k, value=v) for k, v in draw(attribute_lists))
    if draw(st.booleans()):
        span.attributes.extend(KeyValue(key=k, value=v) for k, v in genai_attributes().items()
                               for v in [make_span({k: v}).attributes[0].value])
    return span


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(KeyValue(key=k, value=v) for k, v in draw(attribute_lists))
        for _ in range(draw(st.integers(0, 3))):
            rs.scope_spans.add().spans.extend(draw(st.lists(spans(), max_size=8)))
    return request


def mutate(payload: bytes, rng: random.Random) -> bytes:
    """``payload`` with 1 to 8 bytes flipped, runs dropped or runs duplicated."""
    data = bytearray(payload)
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        i = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.5:
            data[i] = rng.randrange(256)
        elif choice < 0.75:
            del data[i: i + rng.randint(1, 16)]
        else:
            data[i:i] = data[i: i + rng.randint(1, 64)]
    return bytes(data)


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def check_batch(request: ExportTraceServiceRequest, limits: DecodeLimits) -> None:
    """Decode and check every invariant; LimitExceeded is an allowed outcome only over a request limit."""
    try:
        batch = decode_spans(request, limits)
    except LimitExceeded as exc:
        attributes = sum(len(rs.resource.attributes) + sum(len(s.attributes) for ss in rs.scope_spans
                                                            for s in ss.spans) for rs in request.resource_spans)
        assert span_count(request) > limits.max_spans or attributes > limits.max_request_attributes, exc
        return
    assert len(batch.records) + batch.rejected_count == span_count(request)
    for record in batch.records:
        assert len(record.trace_id) == 32 and len(record.span_id) == 16
        assert 0 <= record.start_time_ns < 2**63 and 0 <= record.duration_ns < 2**64
        assert record.status_code in (0, 1, 2)
        assert len(record.span_name.encode()) <= limits.max_value_bytes
        for attrs in (record.attributes, record.resource_attributes):
            assert len(attrs) <= limits.max_attributes
            assert all(len(v.encode()) <= limits.max_value_bytes for v in attrs.values())
        try:
            ExtractUsage()(record)
        except Exception as exc:  # noqa: BLE001 - only Drop is allowed
            assert type(exc).__name__ == "Drop", exc
    records_to_arrow(batch.records)  # what the sink would insert: must never fail on a decoded record


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_parse_or_raise_decode_error(payload: bytes) -> None:
    """Random bytes either parse into a request that decodes cleanly or raise DecodeError."""
    try:
        request = parse_request(payload)
    except DecodeError:
        return
    check_batch(request, DecodeLimits())


@FUZZ
@given(requests(), st.randoms(use_true_random=False))
def test_mutated_wire_bytes_parse_or_raise_decode_error(request: ExportTraceServiceRequest,
                                                        rng: random.Random) -> None:
    """A valid request's bytes with flipped, dropped or duplicated bytes parse or raise DecodeError."""
    try:
        parsed = parse_request(mutate(request.SerializeToString(), rng))
    except DecodeError:
        return
    check_batch(parsed, DecodeLimits())


@FUZZ
@given(requests())
def test_structured_requests_account_for_every_span(request: ExportTraceServiceRequest) -> None:
    """Random requests (odd strings, random ids and times, nested values) decode within the limits."""
    check_batch(request, DecodeLimits())
    check_batch(request, SMALL)
    try:
        check_batch(parse_request(request.SerializeToString()), SMALL)  # the same through the wire
    except DecodeError:
        pass  # the wire format cannot carry some values the Python objects hold (never reached so far)


@FUZZ
@given(any_values, st.integers(1, 20), st.integers(1, 500))
def test_rendering_respects_depth_and_budget(value: AnyValue, max_depth: int, max_items: int) -> None:
    """Rendering never raises and never nests containers deeper than max_depth."""
    text = any_value_to_str(value, max_depth, max_items)
    assert isinstance(text, str)


@pytest.mark.parametrize("depth", [15, 16, 17, 25])
def test_deep_nesting_is_cut_at_the_limit(depth: int) -> None:
    """AnyValues nested beyond max_depth are stored with a marker, counted as truncated; shallower ones whole."""
    span = make_span(genai_attributes())
    span.attributes.add(key="deep", value=deep_value(depth))
    batch = decode_spans(parse_request(make_request([span]).SerializeToString()), DecodeLimits(max_depth=16))
    (record,) = batch.records
    assert (TOO_DEEP in record.attributes["deep"]) == (depth > 16)
    assert (batch.truncated_attributes == 1) == (depth > 16)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    out, n = bytearray([number << 3 | 2]), len(payload)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def deep_request_bytes(depth: int) -> bytes:
    """Wire bytes of a request whose one span has an attribute nested ``depth`` arrays deep."""
    value = AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value -> ArrayValue.values
    span = make_span(genai_attributes()).SerializeToString() + _field(9, _field(1, b"deep") + _field(2, value))
    return _field(1, _field(2, _field(2, span)))  # resource_spans -> scope_spans -> spans


@pytest.mark.parametrize("depth", [200, 5000])
def test_nesting_beyond_protobuf_recursion_limit_is_a_decode_error(depth: int) -> None:
    """A value nested hundreds of levels deep is refused by the parser (INVALID_ARGUMENT), no stack overflow."""
    assert len(decode_spans(parse_request(deep_request_bytes(10)), DecodeLimits()).records) == 1
    with pytest.raises(DecodeError):
        parse_request(deep_request_bytes(depth))


def test_huge_array_renders_in_bounded_work() -> None:
    """A 400,000-element array is cut at the byte limit with the same prefix a full rendering would give."""
    value = _array([AnyValue(int_value=7)] * 400_000)
    full = any_value_to_str(value, 16, 10**9)
    span = make_span(genai_attributes())
    span.attributes.add(key="big", value=value)
    batch = decode_spans(make_request([span]), DecodeLimits(max_value_bytes=1000))
    stored = batch.records[0].attributes["big"]
    assert stored.endswith("...[truncated]") and full.startswith(stored[: -len("...[truncated]")])


def test_too_many_spans_or_attributes_reject_the_request() -> None:
    """Over max_spans or max_request_attributes the whole request raises LimitExceeded naming the flag."""
    request = make_request([make_span(genai_attributes()) for _ in range(41)])
    with pytest.raises(LimitExceeded, match="--max-spans-per-request"):
        decode_spans(request, SMALL)
    request = make_request([make_span({f"a{i}": i for i in range(200)}) for _ in range(3)])
    with pytest.raises(LimitExceeded, match="--max-attributes-per-request"):
        decode_spans(request, SMALL)
    assert len(decode_spans(make_request([make_span(genai_attributes())] * 40), SMALL).records) == 40


def test_odd_status_and_far_future_times_are_storable() -> None:
    """Status code 300 is stored as Unset; a start time past 2**63 ns is rejected; the rest converts to Arrow."""
    odd = make_span(genai_attributes(), status_code=300)
    late = make_span(genai_attributes(), start_ns=2**64 - 10, duration_ns=5)
    batch = decode_spans(make_request([odd, late]), DecodeLimits())
    assert [r.status_code for r in batch.records] == [0]
    assert batch.rejected == {"invalid_timestamp": 1}
    records_to_arrow([ExtractUsage()(r) for r in batch.records])


def test_huge_span_name_is_cut_like_a_value() -> None:
    """A 1 MB span name is stored cut to the value byte limit and counted as truncated."""
    batch = decode_spans(make_request([make_span(genai_attributes(), name="n" * 1_000_000)]), DecodeLimits())
    (record,) = batch.records
    assert len(record.span_name.encode()) <= 65_536 and record.span_name.endswith("...[truncated]")
    assert batch.truncated_attributes == 1
