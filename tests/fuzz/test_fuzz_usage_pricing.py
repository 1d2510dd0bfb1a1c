"""Property-based fuzzing of dialect normalisation and pricing.

Normalisation of any attribute dict ends in a record or ``Drop``, never another exception, and the
record is storable. Pricing any (provider, model, usage) never raises; a quote costs >= 0 and more
input or output tokens never cost less.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import Price
from llm_cost_tracker.transforms.usage import (
    _CACHE_READ,
    _CACHE_WRITE,
    _INPUT,
    _OPERATION,
    _OUTPUT,
    _PROVIDER,
    _REASONING,
    _REPORTED_COST,
    _REQUEST_MODEL,
    _RESPONSE_MODEL,
    MAX_TOKENS,
    ExtractUsage,
)
from llm_cost_tracker.types import Drop, SpanRecord, TokenUsage

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN_KEYS = sorted({k for _, k in _INPUT + _OUTPUT} | set(_CACHE_READ + _CACHE_WRITE + _REASONING + _PROVIDER
                                                             + _OPERATION + _REQUEST_MODEL + _RESPONSE_MODEL
                                                             + _REPORTED_COST)
                    | {"llm_cost_tracker.service_tier", "openai.response.service_tier", "traceloop.span.kind",
                       "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens", "gen_ai.usage.input_audio_tokens",
                       "gen_ai.usage.output_audio_tokens", "gen_ai.usage.input_image_tokens"})
NUMBERISH = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " 12 ", "1_000", "0x10", "١٢٣", "1e400", "-0", "nan", "inf", "9" * 5000, "1.0",
                     "1e-400", "1e30", "1E+20", "99999999999999999999.5", "true", "[1,2]", "\x00"]),
)
MODEL_NAMES = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5-20250929", "gemini-2.5-pro", "o3-mini",
               "anthropic.claude-3-haiku-20240307-v1:0", "text-embedding-3-small", "gpt-4o-2099-01-01",
               "models/gemini-2.5-flash", "azure/gpt-4o", "openai/gpt-4o", "us.anthropic.claude-3-haiku"]
PROVIDERS = ["openai", "anthropic", "gcp.gemini", "aws.bedrock", "azure.ai.openai", "az.ai.inference",
             "OpenAI", "vertex_ai", "google", "mistral_ai", "groq", "ollama", ""]
names = st.one_of(st.sampled_from(MODEL_NAMES), st.text(max_size=60),
                  st.builds(lambda a, b: a + b, st.sampled_from(MODEL_NAMES), st.text(max_size=8)),
                  st.builds(lambda a, b: a + "/" + b, st.text(max_size=10), st.sampled_from(MODEL_NAMES)),
                  st.sampled_from(["", " ", "\x00", "-", "/", "@", "gpt-" * 200, "é" * 100, "..", "-20250101"]))
providers = st.one_of(st.sampled_from(PROVIDERS), st.text(max_size=20))
attribute_dicts = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=20)),
                    st.one_of(NUMBERISH, names, providers, st.text(max_size=50)), max_size=20),
    # LLM-looking spans: a model name plus numeric-ish values under the known keys
    st.builds(lambda model, known, extra: {"gen_ai.request.model": model, **known, **extra},
              names, st.dictionaries(st.sampled_from(KNOWN_KEYS), NUMBERISH, max_size=10),
              st.dictionaries(st.sampled_from(KNOWN_KEYS), st.one_of(names, providers), max_size=3)),
    # a valid LLM span with one known key set to an odd value (so earlier fields do not Drop it first)
    st.builds(lambda model, key, value: {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": "10",
                                         "gen_ai.usage.output_tokens": "5", key: value},
              st.sampled_from(MODEL_NAMES), st.sampled_from(KNOWN_KEYS), NUMBERISH),
)


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.load()


def record(attributes: dict[str, str], start_ns: int = 1_750_000_000_000_000_000, tenant: str = "") -> SpanRecord:
    return span_record(start_time_ns=start_ns, attributes=attributes, tenant=tenant)


@FUZZ
@given(attribute_dicts)
def test_normalisation_yields_a_record_or_drop(attributes: dict[str, str]) -> None:
    """Any attribute dict becomes a record with sane token counts, or raises Drop; nothing else."""
    try:
        out = ExtractUsage()(Detect()(record(attributes)))
    except Drop:
        return
    usage = out.usage
    for count in (*dataclasses.astuple(usage)[:5], *dataclasses.astuple(usage.detail)):  # text counts, then detail
        assert isinstance(count, int) and 0 <= count <= 3 * MAX_TOKENS
    assert out.reported_cost_pusd is None or 0 <= out.reported_cost_pusd < 2**63
    records_to_arrow([out])


@FUZZ
@given(attribute_dicts, st.integers(0, 2**63 - 1), st.text(max_size=10))
def test_full_transform_chain_never_raises_but_drop(catalog: PriceCatalog, attributes: dict[str, str],
                                                    start_ns: int, tenant: str) -> None:
    """Detect, ExtractUsage and Price over random attributes give a storable record or Drop."""
    price = Price(lambda: catalog)
    try:
        out = price(ExtractUsage()(Detect()(record(attributes, start_ns, tenant))))
    except Drop:
        return
    assert out.cost_pusd is None or 0 <= out.cost_pusd < 2**63
    assert out.cache_savings_pusd is None or abs(out.cache_savings_pusd) < 2**63
    records_to_arrow([out])


usages = st.builds(
    lambda i, o, cr, cw, r: TokenUsage(i, o, min(cr, i), min(cw, max(i - min(cr, i), 0)), min(r, o)),
    st.integers(0, MAX_TOKENS), st.integers(0, MAX_TOKENS), st.integers(0, MAX_TOKENS),
    st.integers(0, MAX_TOKENS), st.integers(0, MAX_TOKENS),
)
tier_attributes = st.dictionaries(
    st.sampled_from(["llm_cost_tracker.service_tier", "openai.response.service_tier",
                     "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens", "gen_ai.usage.input_audio_tokens",
                     "gen_ai.usage.output_audio_tokens", "gen_ai.usage.input_image_tokens"]),
    st.one_of(st.sampled_from(["flex", "priority", "batch", "default", "scale"]), NUMBERISH), max_size=4)


@FUZZ
@given(providers, names, st.integers(0, 2**63 - 1), usages, tier_attributes, st.text(max_size=8),
       st.integers(0, 10**6), st.integers(0, 10**6))
def test_quote_never_raises_and_is_monotone(catalog: PriceCatalog, provider: str, model: str, at_ns: int,
                                            usage: TokenUsage, attributes: dict[str, str], tenant: str,
                                            more_in: int, more_out: int) -> None:
    """A quote is None or costs >= 0, and adding input or output tokens never lowers it."""
    quote = catalog.quote(provider, model, at_ns, usage, attributes, tenant)
    if quote is None:
        return
    assert quote.cost_pusd >= 0
    assert all(v >= 0 for k, v in quote.breakdown.items() if k != "discount")
    bigger = dataclasses.replace(usage, input_tokens=usage.input_tokens + more_in,
                                 output_tokens=usage.output_tokens + more_out)
    again = catalog.quote(provider, model, at_ns, bigger, attributes, tenant)
    assert again is not None and again.cost_pusd >= quote.cost_pusd, (quote, again)


@FUZZ
@given(st.sampled_from(MODEL_NAMES), st.sampled_from(PROVIDERS[:4]), usages, st.integers(2, 10))
def test_scaling_usage_scales_cost_up(catalog: PriceCatalog, model: str, provider: str, usage: TokenUsage,
                                      k: int) -> None:
    """Multiplying every token count by k >= 2 never lowers the cost of a known model.

    Every count is scaled, none clipped: clipping broke the proportions the property rests on (input and
    cache reads both clipped to one value leave no uncached input, priced at a tenth of the input rate;
    a fresh clone found it: claude-sonnet-4-5, 572,963,528 input with 302,965,128 cached, k=10)."""
    at = 1_750_000_000_000_000_000
    quote = catalog.quote(provider, model, at, usage)
    assume(quote is not None)
    scaled = TokenUsage(*(c * k for c in dataclasses.astuple(usage)[:5]))  # the text counts
    again = catalog.quote(provider, model, at, scaled)
    assert again is not None and again.cost_pusd >= quote.cost_pusd
