"""Cache, reasoning, audio, service-tier and context-band accounting, per provider's billing rule.

The usage transform hands every dialect's counts over normalised (cached tokens inside
input_tokens, reasoning inside output_tokens); these tests pin how each provider then bills them.
"""

from __future__ import annotations

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.types import TokenUsage

AT = 1_780_000_000_000_000_000
M = 1_000_000  # pico-USD per token for a $1 per 1M tokens rate


def test_openai_cached_input_billed_at_cache_read_rate(catalog: PriceCatalog) -> None:
    """OpenAI: cached prompt tokens cost the cached-input rate and the rest the input rate."""
    q = catalog.quote("openai", "gpt-4.1", AT, TokenUsage(10_000, 0, cache_read_tokens=8_000))
    assert q is not None
    assert q.breakdown == {"input": 2_000 * 2 * M, "cache_read": 8_000 * M // 2}


def test_openai_cache_writes_cost_the_input_rate(catalog: PriceCatalog) -> None:
    """OpenAI has no cache-write surcharge: write tokens fall back to the input rate, labelled."""
    q = catalog.quote("openai", "gpt-4.1", AT, TokenUsage(10_000, 0, cache_write_tokens=4_000))
    assert q is not None
    assert q.cost_pusd == 10_000 * 2 * M
    assert "cache_write=input" in q.fallbacks


def test_anthropic_cache_write_and_read_rates(catalog: PriceCatalog) -> None:
    """Anthropic: cache writes cost 1.25x input, cache reads 0.1x, uncached input 1x."""
    usage = TokenUsage(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=6_000, cache_write_tokens=3_000)
    q = catalog.quote("anthropic", "claude-3-5-sonnet-20241022", AT, usage)
    assert q is not None
    assert q.breakdown == {
        "input": 1_000 * 3 * M,
        "output": 1_000 * 15 * M,
        "cache_read": 6_000 * 3 * M // 10,
        "cache_write": 3_000 * 375 * M // 100,
    }
    assert q.cost_pusd == sum(q.breakdown.values())


def test_anthropic_one_hour_cache_writes_cost_twice_input(catalog: PriceCatalog) -> None:
    """Anthropic: 1-hour cache writes named in the span's attributes cost 2x the input rate."""
    usage = TokenUsage(input_tokens=4_000, cache_write_tokens=4_000)
    attrs = {"gen_ai.usage.cache_creation.ephemeral_1h_input_tokens": 1_000}
    q = catalog.quote("anthropic", "claude-sonnet-4-20250514", AT, usage, attrs)
    assert q is not None
    assert q.breakdown == {"cache_write": 3_000 * 375 * M // 100, "cache_write_1h": 1_000 * 6 * M}


def test_bedrock_claude_uses_bedrock_cache_prices(catalog: PriceCatalog) -> None:
    """Bedrock Claude: cache reads and writes use the Bedrock entry's own cache rates."""
    usage = TokenUsage(input_tokens=10_000, cache_read_tokens=5_000, cache_write_tokens=5_000)
    q = catalog.quote("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", AT, usage)
    assert q is not None
    assert q.breakdown == {"cache_read": 5_000 * 3 * M // 10, "cache_write": 5_000 * 375 * M // 100}


def test_gemini_cached_content_rate(catalog: PriceCatalog) -> None:
    """Gemini: cached-content tokens cost the cached rate ($0.03125 of $0.125/1M is 10%)."""
    q = catalog.quote("gcp.gemini", "gemini-2.5-pro", AT, TokenUsage(100_000, 0, cache_read_tokens=100_000))
    assert q is not None
    assert q.breakdown == {"cache_read": 100_000 * M // 8}


def test_deepseek_cache_hit_rate(catalog: PriceCatalog) -> None:
    """DeepSeek: cache-hit tokens cost the cache-hit rate, misses the input rate."""
    q = catalog.quote("deepseek", "deepseek-chat", AT, TokenUsage(1_000, 0, cache_read_tokens=1_000))
    assert q is not None
    assert q.breakdown == {"cache_read": 1_000 * 28 * M // 1000}


def test_reasoning_priced_apart_when_the_entry_has_a_reasoning_rate(catalog: PriceCatalog) -> None:
    """An entry with a reasoning rate bills reasoning at it and the rest of the output at the output rate."""
    entry = next(
        e for e in catalog.list() if e.latest.standard.reasoning != e.latest.standard.output and e.latest.standard.reasoning
    )
    card = entry.latest.standard
    q = catalog.quote(entry.provider, entry.model, AT, TokenUsage(0, 1_000, reasoning_tokens=400))
    assert q is not None
    assert q.breakdown["reasoning"] * 1000 == 400 * card.reasoning
    assert q.breakdown["output"] * 1000 == 600 * card.output


def test_audio_input_tokens_priced_at_audio_rate(catalog: PriceCatalog) -> None:
    """Audio prompt tokens named in the span's attributes cost the audio rate, not the text rate."""
    attrs = {"llm.token_count.prompt_details.audio": 1_000}
    q = catalog.quote("openai", "gpt-4o-audio-preview-2024-12-17", AT, TokenUsage(1_500, 0), attrs)
    assert q is not None
    assert q.breakdown == {"input": 500 * 25 * M // 10, "input_audio": 1_000 * 40 * M}


def test_service_tier_from_current_and_older_attributes(catalog: PriceCatalog) -> None:
    """The tier that served the response selects flex or priority rates, under either attribute spelling."""
    usage = TokenUsage(1_000_000, 0)
    standard = catalog.quote("openai", "gpt-5", AT, usage)
    flex = catalog.quote("openai", "gpt-5", AT, usage, {"openai.response.service_tier": "flex"})
    priority = catalog.quote("openai", "gpt-5", AT, usage, {"gen_ai.openai.request.service_tier": "priority"})
    default = catalog.quote("openai", "gpt-5", AT, usage, {"openai.request.service_tier": "auto"})
    assert standard and flex and priority and default
    assert (standard.cost_pusd, flex.cost_pusd, priority.cost_pusd) == (1_250_000 * M, 625_000 * M, 2_500_000 * M)
    assert flex.service_tier == "flex" and default.service_tier == "standard"


def test_missing_tier_falls_back_to_standard_and_says_so(catalog: PriceCatalog) -> None:
    """A tier the entry has no price for is billed at standard and labelled as a fallback."""
    q = catalog.quote("anthropic", "claude-3-opus-20240229", AT, TokenUsage(1_000, 0), {"openai.response.service_tier": "flex"})
    assert q is not None and q.service_tier == "standard"
    assert "tier:flex->standard" in q.fallbacks


def test_context_band_bills_whole_request_at_long_context_rate(catalog: PriceCatalog) -> None:
    """Above 200k prompt tokens Gemini 2.5 Pro bills every token at the long-context rates."""
    short = catalog.quote("gcp.gemini", "gemini-2.5-pro", AT, TokenUsage(200_000, 1_000))
    long = catalog.quote("gcp.gemini", "gemini-2.5-pro", AT, TokenUsage(200_001, 1_000))
    assert short is not None and long is not None
    assert short.cost_pusd == 200_000 * 125 * M // 100 + 1_000 * 10 * M
    assert long.cost_pusd == 200_001 * 25 * M // 10 + 1_000 * 15 * M


def test_cached_tokens_count_toward_the_context_band(catalog: PriceCatalog) -> None:
    """Cached prompt tokens count toward the long-context threshold, as providers bill it."""
    q = catalog.quote("anthropic", "claude-sonnet-4-20250514", AT, TokenUsage(250_000, 0, cache_read_tokens=200_000))
    assert q is not None
    assert q.breakdown == {"input": 50_000 * 6 * M, "cache_read": 200_000 * 6 * M // 10}


def test_inconsistent_cache_counts_never_go_negative(catalog: PriceCatalog) -> None:
    """Cache counts larger than the input count leave no negative uncached remainder."""
    q = catalog.quote("openai", "gpt-4.1", AT, TokenUsage(100, 0, cache_read_tokens=300))
    assert q is not None and q.breakdown == {"cache_read": 300 * M // 2}
