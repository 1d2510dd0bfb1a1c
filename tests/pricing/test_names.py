"""Provider normalisation and the model-name matching rules."""

from __future__ import annotations

import pytest

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.pricing._names import bare_model, canonical_provider, family_of
from llm_cost_tracker.types import TokenUsage

AT = 1_780_000_000_000_000_000


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("anthropic", "anthropic"),
        ("Anthropic", "anthropic"),
        ("aws.bedrock", "bedrock"),
        ("AWS Bedrock", "bedrock"),
        ("gcp.vertex_ai", "vertex_ai"),
        ("VertexAI", "vertex_ai"),
        ("gcp.gemini", "gemini"),
        ("gcp.gen_ai", "gemini"),
        ("azure.ai.openai", "azure"),
        ("az.ai.openai", "azure"),
        ("Azure", "azure"),
        ("az.ai.inference", "azure_ai"),
        ("mistral_ai", "mistral"),
        ("MistralAI", "mistral"),
        ("x_ai", "xai"),
        ("together", "together_ai"),
        ("ibm.watsonx.ai", "watsonx"),
        ("", ""),
    ],
)
def test_canonical_provider(raw: str, canonical: str) -> None:
    """Dialect provider spellings map to one catalog provider id."""
    assert canonical_provider(raw) == canonical


def test_family_strips_snapshot_suffixes() -> None:
    """Dated and numbered snapshot suffixes are stripped to find the family name."""
    assert family_of("gpt-4o-2024-08-06") == "gpt-4o"
    assert family_of("claude-3-5-sonnet-20241022") == "claude-3-5-sonnet"
    assert family_of("gemini-1.5-pro-002") == "gemini-1.5-pro"
    assert family_of("gpt-4-0613") == "gpt-4"
    assert family_of("claude-3-5-sonnet@20240620") == "claude-3-5-sonnet"
    assert family_of("gpt-4o") == ""


def test_bare_model_unwraps_bedrock_and_vertex_ids() -> None:
    """Bedrock ids and Vertex @ versions reduce to the vendor's own model name."""
    assert bare_model("us.anthropic.claude-3-5-haiku-20241022-v1:0") == "claude-3-5-haiku-20241022"
    assert bare_model("claude-3-5-sonnet-v2@20241022") == "claude-3-5-sonnet-v2-20241022"
    assert bare_model("claude-opus-4@default") == "claude-opus-4"


def test_unknown_snapshot_of_a_family_with_different_prices_is_unpriced(catalog: PriceCatalog) -> None:
    """An unknown gpt-4o snapshot is not priced as gpt-4o because gpt-4o's snapshots differ in price."""
    assert catalog.quote("openai", "gpt-4o-2099-01-01", AT, TokenUsage(10, 10)) is None


def test_unknown_snapshot_of_a_uniform_family_falls_back(catalog: PriceCatalog) -> None:
    """An unknown snapshot whose family has a single price is priced as the family."""
    q = catalog.quote("gcp.gemini", "gemini-2.0-flash-001", AT, TokenUsage(10, 10))
    assert q is not None and q.pricing_model == "gemini/gemini-2.0-flash" and q.match == "family"


def test_same_model_costs_differently_per_provider(catalog: PriceCatalog) -> None:
    """The provider selects the entry: a model served by two providers can have two prices."""
    direct = catalog.quote("gcp.gemini", "gemini-2.0-flash", AT, TokenUsage(1_000_000, 0))
    vertex = catalog.quote("gcp.vertex_ai", "gemini-2.0-flash", AT, TokenUsage(1_000_000, 0))
    assert direct is not None and vertex is not None
    assert direct.pricing_model == "gemini/gemini-2.0-flash"
    assert vertex.pricing_model == "vertex_ai/gemini-2.0-flash"
    assert direct.cost_pusd != vertex.cost_pusd


def test_resolution_is_cached(catalog: PriceCatalog) -> None:
    """A second lookup of the same name returns the cached resolution object."""
    first = catalog.resolve("openai", "gpt-4o-mini")
    assert first is catalog.resolve("openai", "gpt-4o-mini")


def test_unresolved_names_are_recorded(catalog: PriceCatalog) -> None:
    """Unresolved (provider, model) pairs are kept for the unpriced metric and logged once."""
    catalog.quote("acme", "totally-unknown-model", AT, TokenUsage(1, 1))
    assert ("acme", "totally-unknown-model") in catalog.unresolved


def test_empty_model_is_unpriced(catalog: PriceCatalog) -> None:
    """A span without a model name is unpriced."""
    assert catalog.quote("openai", "", AT, TokenUsage(1, 1)) is None


def test_openrouter_variants(catalog: PriceCatalog) -> None:
    """OpenRouter's :beta variant bills the vendor price; :free variants are not given one."""
    beta = catalog.quote("openrouter", "anthropic/claude-3.5-sonnet:beta", AT, TokenUsage(10, 10))
    assert beta is not None and beta.pricing_model == "anthropic/claude-3-5-sonnet-20241022"
    assert catalog.quote("openrouter", "meta-llama/llama-3.3-70b-instruct:free", AT, TokenUsage(10, 10)) is None
    assert catalog.quote("openrouter", "openai/gpt-4o-mini:free", AT, TokenUsage(10, 10)) is None


def test_did_you_mean_for_unknown_models(catalog: PriceCatalog) -> None:
    """Typos of a catalog name get the nearest names, the intended one first; nonsense gets none."""
    assert catalog.suggest("openai", "gtp-4o-mini")[0] == "gpt-4o-mini"
    assert catalog.suggest("openai", "gpt4o")[0] == "gpt-4o"
    assert catalog.suggest("", "gtp-4o")[0] == "gpt-4o"
    assert catalog.suggest("openai", "zzzzzzzz") == []


def test_pricing_cost_and_show_say_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    """pricing cost/show of an unknown model exit 1 naming the nearest catalog model."""
    from llm_cost_tracker.cli import main

    assert main(["pricing", "cost", "gtp-4o-mini", "--provider", "openai", "--input", "1", "--output", "1"]) == 1
    assert "did you mean gpt-4o-mini" in capsys.readouterr().err
    assert main(["pricing", "show", "gtp-4o-mini", "--provider", "openai"]) == 1
    assert "did you mean gpt-4o-mini" in capsys.readouterr().err
