"""Golden tests: real-world model-name spellings resolve to the right entry and price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage

AT = 1_780_000_000_000_000_000  # 2026-05-28, after every dated price change in the data
USAGE = TokenUsage(input_tokens=100_000, output_tokens=10_000)

# (provider as the dialect sends it, model as the span carries it, expected entry, USD/1M in, USD/1M out)
GOLDEN = [
    # OpenAI: plain, dated, upper case, prefixed, fine-tuned, embeddings
    ("openai", "gpt-4o", "openai/gpt-4o", "2.5", "10"),
    ("OpenAI", "gpt-4o-2024-08-06", "openai/gpt-4o-2024-08-06", "2.5", "10"),
    ("openai", "gpt-4o-2024-05-13", "openai/gpt-4o-2024-05-13", "5", "15"),
    ("openai", "GPT-4o-mini", "openai/gpt-4o-mini", "0.15", "0.6"),
    ("openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini-2024-07-18", "0.15", "0.6"),
    ("openai", "openai/gpt-4.1", "openai/gpt-4.1", "2", "8"),
    ("openai", "gpt-4.1-2025-04-14", "openai/gpt-4.1-2025-04-14", "2", "8"),
    ("openai", "o3-mini", "openai/o3-mini", "1.1", "4.4"),
    ("openai", "o1", "openai/o1", "15", "60"),
    ("openai", "o3", "openai/o3", "2", "8"),
    ("openai", "gpt-5", "openai/gpt-5", "1.25", "10"),
    ("openai", "gpt-3.5-turbo-0125", "openai/gpt-3.5-turbo-0125", "0.5", "1.5"),
    ("openai", "text-embedding-3-small", "openai/text-embedding-3-small", "0.02", "0"),
    ("openai", "text-embedding-ada-002", "openai/text-embedding-ada-002", "0.1", "0"),
    ("openai", "gpt-4-turbo-2024-04-09", "openai/gpt-4-turbo-2024-04-09", "10", "30"),
    ("openai", "ft:gpt-4o-mini-2024-07-18", "openai/ft:gpt-4o-mini-2024-07-18", "0.3", "1.2"),
    ("openai", "gpt-4-32k-0613", "openai/gpt-4-32k", "60", "120"),
    ("openai", "o1-preview-2024-09-12", "openai/o1-preview", "15", "60"),
    # No provider on the span: inferred from the name
    ("", "gpt-4o", "openai/gpt-4o", "2.5", "10"),
    ("", "claude-3-5-sonnet-20241022", "anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("", "gemini-2.5-flash", "gemini/gemini-2.5-flash", "0.3", "2.5"),
    # Azure OpenAI
    ("azure.ai.openai", "gpt-4o", "azure/gpt-4o", "2.5", "10"),
    ("az.ai.openai", "gpt-35-turbo", "azure/gpt-35-turbo", "0.5", "1.5"),
    ("azure", "azure/gpt-4o-2024-08-06", "azure/gpt-4o-2024-08-06", "2.5", "10"),
    ("az.ai.openai", "gpt-4.1-mini", "azure/gpt-4.1-mini", "0.4", "1.6"),
    # Anthropic: dated, -latest aliases, retired models
    ("anthropic", "claude-3-5-sonnet-20241022", "anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("Anthropic", "claude-3-5-sonnet-latest", "anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("anthropic", "claude-3-opus-20240229", "anthropic/claude-3-opus-20240229", "15", "75"),
    ("anthropic", "claude-3-haiku-20240307", "anthropic/claude-3-haiku-20240307", "0.25", "1.25"),
    ("anthropic", "claude-3-7-sonnet-latest", "anthropic/claude-3-7-sonnet-20250219", "3", "15"),
    ("anthropic", "claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-20250514", "3", "15"),
    ("anthropic", "claude-opus-4-1-20250805", "anthropic/claude-opus-4-1-20250805", "15", "75"),
    ("anthropic", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5-20250929", "3", "15"),
    ("anthropic", "claude-haiku-4-5", "anthropic/claude-haiku-4-5", "1", "5"),
    ("anthropic", "claude-opus-4-5-20251101", "anthropic/claude-opus-4-5-20251101", "5", "25"),
    # AWS Bedrock: model ids, cross-region prefixes, ARNs, LiteLLM prefixes, retired ids
    ("aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
    ("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0", "3", "15"),
    ("aws.bedrock", "eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock/eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "3", "15"),
    ("aws.bedrock", "apac.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock/apac.anthropic.claude-sonnet-4-20250514-v1:0", "3", "15"),
    ("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "anthropic/claude-3-haiku-20240307", "0.25", "1.25"),
    (
        "aws.bedrock",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "0.8",
        "4",
    ),
    ("aws.bedrock", "amazon.nova-pro-v1:0", "bedrock/amazon.nova-pro-v1:0", "0.8", "3.2"),
    ("aws.bedrock", "us.amazon.nova-lite-v1:0", "bedrock/us.amazon.nova-lite-v1:0", "0.06", "0.24"),
    ("aws.bedrock", "meta.llama3-1-70b-instruct-v1:0", "bedrock/meta.llama3-1-70b-instruct-v1:0", "0.72", "0.72"),
    ("aws.bedrock", "bedrock/anthropic.claude-3-opus-20240229-v1:0", "bedrock/anthropic.claude-3-opus-20240229-v1:0", "15", "75"),
    ("aws.bedrock", "amazon.titan-embed-text-v2:0", "bedrock/amazon.titan-embed-text-v2:0", "0.02", "0"),
    # Vertex AI: @ versions, v2 spelling, resource names, Gemini snapshots
    ("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("gcp.vertex_ai", "claude-3-5-sonnet@20240620", "vertex_ai/claude-3-5-sonnet@20240620", "3", "15"),
    ("gcp.vertex_ai", "claude-sonnet-4@20250514", "anthropic/claude-sonnet-4-20250514", "3", "15"),
    ("gcp.vertex_ai", "claude-haiku-4-5@20251001", "vertex_ai/claude-haiku-4-5@20251001", "1", "5"),
    ("gcp.vertex_ai", "gemini-2.5-pro", "vertex_ai/gemini-2.5-pro", "1.25", "10"),
    ("gcp.vertex_ai", "gemini-1.5-pro-002", "gemini/gemini-1.5-pro", "1.25", "5"),
    (
        "gcp.vertex_ai",
        "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash",
        "vertex_ai/gemini-2.5-flash",
        "0.3",
        "2.5",
    ),
    # Gemini API: resource names, -latest, prefixes
    ("gcp.gemini", "gemini-2.5-pro", "gemini/gemini-2.5-pro", "1.25", "10"),
    ("gcp.gemini", "models/gemini-2.5-flash", "gemini/gemini-2.5-flash", "0.3", "2.5"),
    ("gcp.gemini", "gemini-1.5-flash-latest", "gemini/gemini-1.5-flash", "0.075", "0.3"),
    ("gcp.gemini", "gemini-1.5-flash-002", "gemini/gemini-1.5-flash", "0.075", "0.3"),
    ("gcp.gemini", "gemini-1.5-flash-8b", "gemini/gemini-1.5-flash-8b", "0.0375", "0.15"),
    ("gcp.gen_ai", "gemini-2.0-flash", "gemini/gemini-2.0-flash", "0.1", "0.4"),
    ("Google", "gemini/gemini-2.5-flash-lite", "gemini/gemini-2.5-flash-lite", "0.1", "0.4"),
    # Mistral, Cohere, DeepSeek, xAI, Groq, Together, Fireworks
    ("mistral_ai", "mistral-large-latest", "mistral/mistral-large-latest", "0.5", "1.5"),
    ("mistral", "mistral-embed", "mistral/mistral-embed", "0.1", "0"),
    ("cohere", "command-r-plus-08-2024", "cohere/command-r-plus-08-2024", "2.5", "10"),
    ("Cohere", "command-r-08-2024", "cohere/command-r-08-2024", "0.15", "0.6"),
    ("cohere", "embed-english-v3.0", "cohere/embed-english-v3.0", "0.1", "0"),
    ("deepseek", "deepseek-chat", "deepseek/deepseek-chat", "0.28", "0.42"),
    ("xai", "grok-4", "xai/grok-4-0709", "3", "15"),
    ("x_ai", "grok-3-mini", "xai/grok-3-mini", "0.3", "0.5"),
    ("groq", "llama-3.3-70b-versatile", "groq/llama-3.3-70b-versatile", "0.59", "0.79"),
    ("groq", "openai/gpt-oss-120b", "groq/openai/gpt-oss-120b", "0.15", "0.6"),
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "1.04", "1.04"),
    ("fireworks", "accounts/fireworks/models/llama-v3p1-70b-instruct", "fireworks_ai/accounts/fireworks/models/llama-v3p1-70b-instruct", "0.9", "0.9"),
    # OpenRouter: vendor/model with dotted versions, priced at the vendor's list price
    ("openrouter", "anthropic/claude-3.5-sonnet", "anthropic/claude-3-5-sonnet-20241022", "3", "15"),
    ("openrouter", "openai/gpt-4o-mini", "openai/gpt-4o-mini", "0.15", "0.6"),
    ("openrouter", "google/gemini-2.5-pro", "gemini/gemini-2.5-pro", "1.25", "10"),
    ("openrouter", "anthropic/claude-sonnet-4", "anthropic/claude-sonnet-4-20250514", "3", "15"),
    ("openrouter", "x-ai/grok-4", "xai/grok-4-0709", "3", "15"),
    ("voyage", "voyage-3", "voyage/voyage-3", "0.06", "0"),
]


def test_golden_table_is_large_enough() -> None:
    """The golden table covers at least 60 real-world spellings."""
    assert len(GOLDEN) >= 60


@pytest.mark.parametrize(("provider", "model", "entry", "per_m_in", "per_m_out"), GOLDEN)
def test_golden_spelling(
    catalog: PriceCatalog, provider: str, model: str, entry: str, per_m_in: str, per_m_out: str
) -> None:
    """Each spelling resolves to its expected entry and costs exactly 100k input + 10k output tokens."""
    q = catalog.quote(provider, model, AT, USAGE)
    assert q is not None, (provider, model)
    assert q.pricing_model == entry
    expected = (Decimal(per_m_in) / 10 + Decimal(per_m_out) / 100) * PICO_PER_USD
    assert q.cost_pusd == int(expected)
