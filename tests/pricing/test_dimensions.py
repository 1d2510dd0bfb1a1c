"""Every unit a span can carry is priced, and what cannot be priced is 'partial', never $0 (issue 18)."""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.pricing._model import parse_document
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage, UsageDetail

AT = 1_780_000_000_000_000_000  # 2026-05-28


def _usd(text: str) -> int:
    from decimal import Decimal

    return int(Decimal(text) * PICO_PER_USD)


def test_gpt_image_1_output_tokens_are_image_tokens(catalog: PriceCatalog) -> None:
    """50 text tokens in ($5/M) and 4,160 image tokens out ($40/M) cost $0.16665, not $0.00025."""
    q = catalog.quote("openai", "gpt-image-1", AT, TokenUsage(50, 4160))
    assert q is not None and not q.missing
    assert q.cost_pusd == _usd("0.16665")
    assert q.breakdown == {"input": _usd("0.00025"), "output_image": _usd("0.1664")}


def test_image_tokens_named_by_attributes_split_the_output(catalog: PriceCatalog) -> None:
    """gpt-image-1.5 has a text-output rate too: image tokens the span names are billed as image, the rest as text."""
    attrs = {"gen_ai.usage.output_image_tokens": "1000"}
    q = catalog.quote("openai", "gpt-image-1.5", AT, TokenUsage(0, 1100), attrs)
    assert q is not None
    assert q.breakdown == {"output_image": 1000 * 32 * 10**6, "output": 100 * 10 * 10**6}  # $32/M and $10/M


def test_embedding_cost(catalog: PriceCatalog) -> None:
    """text-embedding-3-small: 1,000 tokens at $0.02/M is $0.00002."""
    q = catalog.quote("openai", "text-embedding-3-small", AT, TokenUsage(1000, 0))
    assert q is not None and q.cost_pusd == _usd("0.00002") and not q.missing


def test_per_second_per_character_and_per_image(catalog: PriceCatalog) -> None:
    """whisper-1 by the second (also from a seconds attribute), tts-1 by the character."""
    q = catalog.quote("openai", "whisper-1", AT, TokenUsage(detail=UsageDetail(input_duration_ms=90_500)))
    assert q is not None and q.cost_pusd == _usd("0.00905") and not q.missing  # 90.5 s at $0.0001/s
    q = catalog.quote("openai", "whisper-1", AT, TokenUsage(), {"llm_cost_tracker.usage.input_seconds": "90.5"})
    assert q is not None and q.cost_pusd == _usd("0.00905")
    q = catalog.quote("openai", "tts-1", AT, TokenUsage(detail=UsageDetail(input_characters=2000)))
    assert q is not None and q.cost_pusd == _usd("0.03")  # $15 per million characters


def test_web_search_is_priced_where_the_entry_has_a_price(catalog: PriceCatalog) -> None:
    """gpt-4o-search-preview has a per-query price ($0.025, medium context): one search adds it."""
    plain = catalog.quote("openai", "gpt-4o-search-preview", AT, TokenUsage(100, 100))
    searched = catalog.quote("openai", "gpt-4o-search-preview", AT, TokenUsage(100, 100),
                             {"gen_ai.usage.web_search_requests": "2"})
    assert plain is not None and searched is not None
    assert searched.cost_pusd - plain.cost_pusd == _usd("0.05") and not searched.missing


def test_a_dimension_without_a_price_is_partial_not_zero(catalog: PriceCatalog) -> None:
    """gpt-4o has no web-search price: the tokens are priced, the span is partial and names per_search."""
    q = catalog.quote("openai", "gpt-4o", AT, TokenUsage(100, 100, detail=UsageDetail(search_requests=1)))
    plain = catalog.quote("openai", "gpt-4o", AT, TokenUsage(100, 100))
    assert q is not None and plain is not None
    assert q.missing == ("per_search",) and "per_search" not in q.breakdown
    assert q.cost_pusd == plain.cost_pusd and not plain.missing


def _catalog_of(models: dict[str, object]) -> PriceCatalog:
    errors: list[str] = []
    entries = parse_document({"schema_version": 1, "provider": "acme", "models": models}, "test", errors)
    assert not errors
    return PriceCatalog(entries)


def _version(**rates: str) -> dict[str, object]:
    return {"versions": [{"version": "v1", "source": "test", "recorded": "2026-01-01",
                          "rates": [{"tier": "standard", **rates}]}]}


def test_undeclared_output_price_is_partial_in_quote_and_batch() -> None:
    """An entry with only an input price: input-only spans are priced; output tokens make the span partial
    (scalar quote) or unpriced (the batch path): never output at $0."""
    cat = _catalog_of({"input-only": _version(input="1"), "image-gen": {"mode": "image_generation",
                                                                      **_version(input="1", output_image="40")}})
    q = cat.quote("acme", "input-only", AT, TokenUsage(1000, 0))
    assert q is not None and not q.missing and q.cost_pusd == _usd("0.001")
    q = cat.quote("acme", "input-only", AT, TokenUsage(1000, 10))
    assert q is not None and q.missing == ("output",) and q.cost_pusd == _usd("0.001")
    # reasoning falls back to the output rate, which is missing: missing too
    q = cat.quote("acme", "input-only", AT, TokenUsage(0, 10, reasoning_tokens=10))
    assert q is not None and q.missing == ("reasoning",)
    cost, priced, _ = cat.quote_batch("acme", ["input-only", "input-only", "image-gen"], AT,
                                      np.array([1000, 1000, 50]), np.array([0, 10, 4160]), np.zeros(3, np.int64),
                                      np.zeros(3, np.int64), np.zeros(3, np.int64))
    assert priced.tolist() == [True, False, True]
    assert cost.tolist() == [_usd("0.001"), 0, _usd("0.00005") + _usd("0.1664")]


def test_batch_path_prices_image_output_like_quote(catalog: PriceCatalog) -> None:
    """quote_batch gives gpt-image-1 the same cost as quote."""
    cost, priced, _ = catalog.quote_batch("openai", ["gpt-image-1"], AT, np.array([50]), np.array([4160]),
                                          np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64))
    assert priced.tolist() == [True] and cost.tolist() == [_usd("0.16665")]
