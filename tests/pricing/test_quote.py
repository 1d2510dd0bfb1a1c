"""Exact costs and cache/reasoning accounting of ``PriceCatalog.quote``."""

from __future__ import annotations

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage

AT = 1_780_000_000_000_000_000  # 2026-05-28


def test_plain_input_output_cost_is_exact(catalog: PriceCatalog) -> None:
    """One million input and output tokens of gpt-4o-2024-08-06 cost exactly $2.50 + $10.00."""
    q = catalog.quote("openai", "gpt-4o-2024-08-06", AT, TokenUsage(1_000_000, 1_000_000))
    assert q is not None
    assert q.cost_pusd == 12_500_000 * PICO_PER_USD // 1_000_000
    assert q.pricing_model == "openai/gpt-4o-2024-08-06"
    assert q.breakdown == {"input": 2_500_000_000_000, "output": 10_000_000_000_000}


def test_unknown_model_is_none(catalog: PriceCatalog) -> None:
    """A model the catalog cannot resolve gives None, never a zero cost."""
    assert catalog.quote("openai", "no-such-model-xyz", AT, TokenUsage(10, 10)) is None


def test_cached_tokens_are_not_double_counted(catalog: PriceCatalog) -> None:
    """Cache reads are a subset of input tokens: only the uncached rest is billed at the input rate."""
    q = catalog.quote("openai", "gpt-4o-2024-08-06", AT, TokenUsage(1000, 0, cache_read_tokens=400))
    assert q is not None
    # 600 * $2.50/M + 400 * $1.25/M
    assert q.breakdown == {"input": 1_500_000_000, "cache_read": 500_000_000}
    assert q.cost_pusd == 2_000_000_000


def test_reasoning_tokens_are_inside_output(catalog: PriceCatalog) -> None:
    """Reasoning tokens are part of output tokens and are not billed a second time."""
    plain = catalog.quote("openai", "o3", AT, TokenUsage(0, 1000))
    with_reasoning = catalog.quote("openai", "o3", AT, TokenUsage(0, 1000, reasoning_tokens=800))
    assert plain is not None and with_reasoning is not None
    assert plain.cost_pusd == with_reasoning.cost_pusd
