"""Hypothesis properties: cost is monotone in every token count and additive across spans."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.pricing._quote import femto_amounts
from llm_cost_tracker.types import TokenUsage

AT = 1_780_000_000_000_000_000
KEYS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-5"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("deepseek", "deepseek-chat"),
    ("openai", "o3"),
]
counts = st.integers(min_value=0, max_value=400_000)
DIMENSIONS = ("uncached", "cache_read", "cache_write", "text_output", "reasoning")


def usage_of(parts: dict[str, int]) -> TokenUsage:
    """A consistent TokenUsage from independent parts (cached inside input, reasoning inside output)."""
    return TokenUsage(
        input_tokens=parts["uncached"] + parts["cache_read"] + parts["cache_write"],
        output_tokens=parts["text_output"] + parts["reasoning"],
        cache_read_tokens=parts["cache_read"],
        cache_write_tokens=parts["cache_write"],
        reasoning_tokens=parts["reasoning"],
    )


@pytest.fixture(scope="module")
def cat() -> PriceCatalog:
    """The bundled catalog (module-scoped for hypothesis)."""
    return PriceCatalog.load()


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(KEYS),
    parts=st.fixed_dictionaries({d: counts for d in DIMENSIONS}),
    dim=st.sampled_from(DIMENSIONS),
    extra=st.integers(min_value=1, max_value=100_000),
)
def test_cost_is_monotone_in_every_token_count(cat: PriceCatalog, key: tuple[str, str], parts: dict[str, int], dim: str, extra: int) -> None:
    """Adding tokens of any kind never lowers a span's cost."""
    before = cat.quote(key[0], key[1], AT, usage_of(parts))
    after = cat.quote(key[0], key[1], AT, usage_of({**parts, dim: parts[dim] + extra}))
    assert before is not None and after is not None
    assert after.cost_pusd >= before.cost_pusd


small = st.integers(min_value=0, max_value=20_000)  # a+b stays below every context band


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(KEYS),
    a=st.fixed_dictionaries({d: small for d in DIMENSIONS}),
    b=st.fixed_dictionaries({d: small for d in DIMENSIONS}),
)
def test_cost_is_additive_across_spans(cat: PriceCatalog, key: tuple[str, str], a: dict[str, int], b: dict[str, int]) -> None:
    """Within one context band, two spans cost what one span with their summed tokens costs (exactly in femto-USD, within one pico-USD of rounding per span)."""
    ua, ub = usage_of(a), usage_of(b)
    uab = usage_of({d: a[d] + b[d] for d in DIMENSIONS})
    resolution = cat.resolve(key[0], key[1])
    assert resolution is not None
    version = resolution.entry.version_at(AT)
    assert version is not None
    card = version.standard
    femto = [sum(femto_amounts(card, u).values()) for u in (ua, ub, uab)]
    assert femto[0] + femto[1] == femto[2] + card.per_request * (ua != TokenUsage() and ub != TokenUsage())
    qa, qb, qab = (cat.quote(key[0], key[1], AT, u) for u in (ua, ub, uab))
    assert qa is not None and qb is not None and qab is not None
    assert abs(qa.cost_pusd + qb.cost_pusd - qab.cost_pusd) <= 1


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(KEYS), parts=st.fixed_dictionaries({d: counts for d in DIMENSIONS}))
def test_batch_equals_scalar(cat: PriceCatalog, key: tuple[str, str], parts: dict[str, int]) -> None:
    """quote_batch gives exactly the cost quote gives."""
    u = usage_of(parts)
    q = cat.quote(key[0], key[1], AT, u)
    cost, priced, _ = cat.quote_batch(
        [key[0]], [key[1]], [AT], [u.input_tokens], [u.output_tokens], [u.cache_read_tokens],
        [u.cache_write_tokens], [u.reasoning_tokens],
    )
    assert q is not None and priced[0]
    assert int(cost[0]) == q.cost_pusd
