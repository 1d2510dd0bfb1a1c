"""Decoding OTLP requests into records, with limits and per-span rejections."""

import pytest

from llm_cost_tracker.sources.otlp_decode import DecodeError, DecodeLimits, decode_spans, parse_request
from llm_cost_tracker.testing import genai_attributes, make_request, make_span


def test_decodes_identity_timing_and_attributes() -> None:
    """Ids become hex, duration comes from the timestamps, resource gives service and tenant."""
    span = make_span({**genai_attributes(), "flag": True, "ratio": 0.5, "tags": ["a", 1]},
                     trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_ns=1_000, duration_ns=250)
    req = make_request([span], {"service.name": "chatbot", "tenant.id": "acme"})
    batch = decode_spans(parse_request(req.SerializeToString()), DecodeLimits())
    (r,) = batch.records
    assert r.trace_id == "01" * 16 and r.span_id == "02" * 8
    assert (r.start_time_ns, r.duration_ns) == (1_000, 250)
    assert (r.service_name, r.tenant) == ("chatbot", "acme")
    assert r.attributes["flag"] == "true" and r.attributes["ratio"] == "0.5"
    assert r.attributes["tags"] == '["a",1]'
    assert r.attributes["gen_ai.usage.input_tokens"] == "1000"
    assert batch.rejected_count == 0


def test_bad_ids_are_rejected_per_span() -> None:
    """A span with a malformed trace id is rejected while its neighbours are kept."""
    good = make_span(genai_attributes())
    bad = make_span(genai_attributes(), trace_id=b"\x01" * 3)
    batch = decode_spans(make_request([good, bad]), DecodeLimits())
    assert len(batch.records) == 1
    assert batch.rejected == {"invalid_id": 1}
    assert "trace_id" in batch.messages[0]


def test_attribute_limits_keep_usage_keys() -> None:
    """Over the attribute limit, GenAI keys are kept first and the truncation is reported."""
    attrs = {f"junk.{i}": i for i in range(3000)}
    attrs.update(genai_attributes())
    batch = decode_spans(make_request([make_span(attrs)]), DecodeLimits(max_attributes=100))
    (r,) = batch.records
    assert len(r.attributes) == 100
    assert r.attributes["gen_ai.usage.input_tokens"] == "1000"
    assert batch.truncated_attributes == 3006 - 100
    assert "truncated" in batch.messages[-1]


def test_long_values_are_truncated() -> None:
    """A value over the byte limit is cut at a character boundary and marked."""
    batch = decode_spans(make_request([make_span({**genai_attributes(), "gen_ai.prompt": "é" * 5000})]),
                         DecodeLimits(max_value_bytes=1000))
    value = batch.records[0].attributes["gen_ai.prompt"]
    assert len(value.encode()) <= 1000 and value.endswith("...[truncated]")


def test_malformed_payload_raises_decode_error() -> None:
    """Bytes that are not an ExportTraceServiceRequest raise DecodeError."""
    with pytest.raises(DecodeError):
        parse_request(b"\xff\xff\xff\xff garbage")


def test_zero_and_empty_values_keep_their_kind() -> None:
    """Values whose string field is empty (empty strings, zeros, false, empty arrays, no value at all) are
    rendered by their kind, as before non-empty strings took the shortcut."""
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    span = make_span({"empty": "", "zero": 0, "no": False, "nought": 0.0, "none": [], "text": "x"})
    span.attributes.append(KeyValue(key="unset"))
    batch = decode_spans(parse_request(make_request([span]).SerializeToString()), DecodeLimits())
    (r,) = batch.records
    assert {k: r.attributes[k] for k in ("empty", "zero", "no", "nought", "none", "text", "unset")} == {
        "empty": "", "zero": "0", "no": "false", "nought": "0.0", "none": "[]", "text": "x", "unset": ""}


def test_attribute_keys_over_the_limit_are_dropped_and_counted() -> None:
    """A span or resource attribute whose key is over max_key_bytes (UTF-8) is dropped, counted as truncated
    and named in the answer's message; keys at the limit stay (later stages remember keys)."""
    limits = DecodeLimits(max_key_bytes=64)
    long_key, at_limit = "k" * 65, "é" * 32  # 64 bytes
    request = make_request([make_span({**genai_attributes(), long_key: "x", at_limit: "y"})],
                           {"r" * 4_000_000: "z"})
    batch = decode_spans(request, limits)
    (record,) = batch.records
    assert long_key not in record.attributes and record.attributes[at_limit] == "y"
    assert list(record.resource_attributes) == ["service.name"]
    assert batch.long_keys == 2 and batch.truncated_attributes == 2
    assert "2 of them had a key over 64 bytes" in batch.messages[-1]
    assert DecodeLimits().max_key_bytes == 256


def test_every_scalar_kind_is_rendered_as_any_value_to_str_renders_it() -> None:
    """The decoder's inlined scalar paths (a non-zero int skips the oneof lookup) agree with the reference
    rendering on zero, negative and huge ints, doubles, bools, empty strings and nested values."""
    from llm_cost_tracker.sources.otlp_decode import any_value_to_str

    attributes = {"zero": 0, "negative": -5, "huge": 2**62, "tiny": -(2**63), "double": 0.0, "half": 1.5,
                  "yes": True, "no": False, "empty": "", "text": "x", "array": [1, "a"]}
    request = make_request([make_span(attributes)])
    stored = decode_spans(request, DecodeLimits()).records[0].attributes
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert stored == {kv.key: any_value_to_str(kv.value) for kv in span.attributes}
    assert stored["zero"] == "0" and stored["negative"] == "-5" and stored["double"] == "0.0"
