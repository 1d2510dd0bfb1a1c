"""Dialect normalisation: what each dialect's token counts mean after extraction."""

from decimal import Decimal

import pytest

from llm_cost_tracker.testing import (
    genai_attributes,
    legacy_attributes,
    openinference_attributes,
    span_record,
)
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.usage import ExtractUsage, parse_reported_cost
from llm_cost_tracker.types import Drop, SpanRecord, TokenUsage


def record(attrs: dict) -> SpanRecord:
    return span_record(attributes={k: _s(v) for k, v in attrs.items()})


def _s(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def extract(attrs: dict) -> SpanRecord:
    return ExtractUsage()(Detect()(record(attrs)))


def test_genai_cache_tokens_stay_inside_input() -> None:
    """GenAI spans keep cache reads inside input_tokens, so the uncached part is input minus cache."""
    r = extract(genai_attributes(input_tokens=1000, cache_read=600, cache_write=100))
    assert r.dialect == "genai"
    assert r.usage == TokenUsage(1000, 200, 600, 100, 0)
    assert r.usage.uncached_input_tokens == 300


def test_anthropic_raw_counts_are_detected_and_summed() -> None:
    """When cache tokens exceed input_tokens the producer sent Anthropic's exclusive counts, which are summed."""
    r = extract(genai_attributes(provider="anthropic", model="claude-sonnet-4", input_tokens=50,
                                 cache_read=4000, cache_write=300))
    assert r.usage.input_tokens == 4350
    assert r.usage.uncached_input_tokens == 50


def test_legacy_openllmetry_dialect() -> None:
    """OpenLLMetry's prompt/completion tokens and underscore cache key are read, cache inside the prompt."""
    r = extract(legacy_attributes(prompt_tokens=900, completion_tokens=100, cache_read=512, system="OpenAI"))
    assert r.dialect == "genai_legacy"
    assert r.provider == "openai"
    assert r.operation == "chat"
    assert r.usage == TokenUsage(900, 100, 512, 0, 0)


def test_openinference_dialect() -> None:
    """OpenInference token counts and model name are read, prompt_details as a breakdown of the prompt."""
    r = extract(openinference_attributes(model="claude-3-5-haiku", provider="anthropic", prompt=700, completion=50,
                                         cache_read=200))
    assert r.dialect == "openinference"
    assert (r.request_model, r.provider, r.operation) == ("claude-3-5-haiku", "anthropic", "llm")
    assert r.usage == TokenUsage(700, 50, 200, 0, 0)


def test_reasoning_is_inside_output() -> None:
    """Reasoning tokens are a subset of output tokens and are not added on top."""
    r = extract(genai_attributes(model="o3-mini", output_tokens=1200, reasoning=1000))
    assert r.usage.output_tokens == 1200 and r.usage.reasoning_tokens == 1000


@pytest.mark.parametrize("bad", ["-5", "1.5", "abc", "1e30"])
def test_invalid_token_counts_drop_the_span(bad: str) -> None:
    """Negative, fractional, non-numeric or absurd token counts reject the span with a reason."""
    attrs = genai_attributes()
    attrs["gen_ai.usage.input_tokens"] = bad
    with pytest.raises(Drop) as info:
        extract(attrs)
    assert info.value.reason == "invalid_token_count"


def test_integral_strings_and_doubles_are_accepted() -> None:
    """Counts sent as strings or integral doubles are accepted."""
    attrs = genai_attributes()
    attrs["gen_ai.usage.input_tokens"] = "42"
    attrs["gen_ai.usage.output_tokens"] = "7.0"
    assert extract(attrs).usage.input_tokens == 42
    assert extract(attrs).usage.output_tokens == 7


def test_non_llm_and_aggregate_spans_are_dropped() -> None:
    """Spans without a model or usage, and agent/tool spans, are not priced."""
    for attrs in ({"http.method": "GET"}, {**genai_attributes(), "gen_ai.operation.name": "invoke_agent"},
                  {**openinference_attributes(), "openinference.span.kind": "CHAIN"}):
        with pytest.raises(Drop) as info:
            Detect()(record(attrs))
        assert info.value.reason == "not_llm"


def test_reported_cost_is_exact() -> None:
    """A vendor-reported cost is kept in pico-USD without float rounding."""
    assert parse_reported_cost("0.000123456789012") == 123_456_789
    assert parse_reported_cost("nope") is None
    assert parse_reported_cost("-1") is None
    r = extract({**genai_attributes(), "gen_ai.usage.cost": "0.0015"})
    assert r.reported_cost_pusd == int(Decimal("0.0015") * 10**12)
