"""Provider and model-name normalisation: how the spellings spans carry map onto catalog keys.

Pure functions, no catalog access: :func:`canonical_provider` maps a dialect's provider string to a
catalog provider id, and :func:`model_candidates` lists the (provider, model, how) keys to try in
order. The catalog applies the "family only where the price is the same" rule on top.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Dialect spellings -> catalog provider ids. Keys are lower-cased with spaces, "-" and "_" removed.
_PROVIDER_ALIASES = {
    "openai": "openai",
    "azure": "azure",
    "azureaiopenai": "azure",
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "azureopenai": "azure",
    "azure.openai": "azure",
    "azure.ai.inference": "azure_ai",
    "az.ai.inference": "azure_ai",
    "azureai": "azure_ai",
    "anthropic": "anthropic",
    "aws.bedrock": "bedrock",
    "bedrock": "bedrock",
    "awsbedrock": "bedrock",
    "aws": "bedrock",
    "bedrockconverse": "bedrock",
    "gcp.vertex_ai": "vertex_ai",
    "gcp.vertexai": "vertex_ai",
    "vertexai": "vertex_ai",
    "vertex": "vertex_ai",
    "googlevertexai": "vertex_ai",
    "gcp.gemini": "gemini",
    "gemini": "gemini",
    "google": "gemini",
    "googlegenai": "gemini",
    "googleai": "gemini",
    "gcp.gen_ai": "gemini",
    "gcp.genai": "gemini",
    "mistral": "mistral",
    "mistralai": "mistral",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "xai",
    "x.ai": "xai",
    "groq": "groq",
    "together": "together_ai",
    "togetherai": "together_ai",
    "fireworks": "fireworks_ai",
    "fireworksai": "fireworks_ai",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "watsonx",
    "watsonx": "watsonx",
    "voyage": "voyage",
    "voyageai": "voyage",
    "deepinfra": "deepinfra",
    "databricks": "databricks",
    "ollama": "ollama",
}

# Model-name prefixes (as LiteLLM and SDKs write them) that name a provider.
_MODEL_PREFIX_PROVIDERS = {
    "openai": "openai",
    "azure": "azure",
    "azure_ai": "azure_ai",
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "vertex_ai": "vertex_ai",
    "vertex": "vertex_ai",
    "gemini": "gemini",
    "google": "gemini",
    "mistral": "mistral",
    "mistralai": "mistral",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "xai",
    "x-ai": "xai",
    "groq": "groq",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks_ai",
    "openrouter": "openrouter",
    "voyage": "voyage",
}

FIRST_PARTY_ORDER = ("openai", "anthropic", "gemini", "mistral", "cohere", "deepseek", "xai")
"""Where a model is looked up when the span names no provider."""

# When a provider has no entry for a model, these providers' list prices are the same by the
# providers' own documentation (see docs/pricing.md, "Provider fallbacks").
PROVIDER_FALLBACKS: dict[str, tuple[str, ...]] = {
    "azure": ("openai",),
    "vertex_ai": ("gemini", "anthropic"),
    "gemini": ("vertex_ai",),
    "bedrock": ("anthropic",),
    "openrouter": FIRST_PARTY_ORDER,
}

_BEDROCK_ARN = re.compile(r"^arn:aws[\w-]*:bedrock:[\w-]*:\d*:(?:inference-profile|foundation-model|application-inference-profile)/")
_BEDROCK_GEO = re.compile(r"^(?:us|eu|apac|au|jp|ca|global|us-gov)\.(?=[a-z0-9-]+\.)")
_BEDROCK_VENDOR = re.compile(r"^(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer)\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$|:\d+$")
_VERTEX_RESOURCE = re.compile(r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/")
_DATE_SUFFIX = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-\d{3}|@\d{8}|@\d{3}|@default|@latest)$")
_LATEST = re.compile(r"[-@]latest$")
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def _squash(text: str) -> str:
    return text.strip().lower().replace(" ", "").replace("-", "").replace("_", "")


_SQUASHED_ALIASES = {_squash(k): v for k, v in _PROVIDER_ALIASES.items()}


def canonical_provider(provider: str | None) -> str:
    """The catalog provider id for a dialect's provider string (``""`` when unknown or empty)."""
    if not provider:
        return ""
    return _SQUASHED_ALIASES.get(_squash(provider), provider.strip().lower())


def split_prefix(model: str) -> tuple[str, str]:
    """``("bedrock", "anthropic.claude...")`` for ``"bedrock/anthropic.claude..."``; ``("", model)`` if none."""
    head, sep, rest = model.partition("/")
    if sep and head.lower() in _MODEL_PREFIX_PROVIDERS:
        return _MODEL_PREFIX_PROVIDERS[head.lower()], rest
    return "", model


def family_of(model: str) -> str:
    """The model without a date or snapshot suffix (``gpt-4o-2024-08-06`` -> ``gpt-4o``), or ``""``."""
    stripped = _DATE_SUFFIX.sub("", model)
    return stripped if stripped != model else ""


def _variants(model: str, provider: str) -> Iterator[tuple[str, str]]:
    """Spellings of one model at one provider, with how each was derived; the exact name first."""
    yield model, "exact"
    lower = model.lower()
    if lower != model:
        yield lower, "case"
    name = lower
    if name.startswith("models/"):  # Gemini API resource names
        name = name[len("models/"):]
        yield name, "normalized"
    vertex = _VERTEX_RESOURCE.sub("", name)
    if vertex != name:
        name = vertex
        yield name, "normalized"
    if provider in ("bedrock", ""):
        arn = _BEDROCK_ARN.sub("", name)
        if arn != name:
            name = arn
            yield name, "normalized"
        geo = _BEDROCK_GEO.sub("", name)
        if geo != name:
            yield geo, "normalized"
    if provider == "azure" and "gpt-35" in name:
        yield name.replace("gpt-35", "gpt-3.5"), "normalized"
    if "claude" in name and _DOTTED_VERSION.search(name):  # OpenRouter and others write claude-3.5-sonnet
        yield _DOTTED_VERSION.sub("-", name), "normalized"


def bare_model(model: str) -> str:
    """A vendor's own spelling behind a Bedrock id or Vertex version (for provider fallbacks)."""
    name = _BEDROCK_ARN.sub("", model.lower())
    name = _BEDROCK_GEO.sub("", name)
    if _BEDROCK_VENDOR.match(name):
        name = _BEDROCK_VENDOR.sub("", name)
        name = _BEDROCK_VERSION.sub("", name)
    if "@" in name:
        base, _, suffix = name.partition("@")
        name = f"{base}-{suffix}" if suffix.isdigit() and len(suffix) == 8 else base
    if "claude" in name:
        name = _DOTTED_VERSION.sub("-", name)
    return name


def model_candidates(provider: str, model: str) -> Iterator[tuple[str, str, str]]:
    """``(provider, model, how)`` keys to look up, best first, before family and fallback rules.

    Args:
        provider: a canonical provider id (``canonical_provider``) or ``""``.
        model: the model name as the span carries it.
    """
    model = model.strip()
    prefix, rest = split_prefix(model)
    if provider:
        for name, how in _variants(model, provider):
            yield provider, name, how
    if prefix:
        target = prefix if not provider or prefix == provider or provider in ("openrouter", "litellm") else provider
        for name, how in _variants(rest, target):
            yield target, name, "normalized" if how == "exact" else how
        if target != prefix:
            for name, _how in _variants(rest, prefix):
                yield prefix, name, "normalized"
    if provider == "openrouter" and "/" in model:
        vendor, _, name = model.partition("/")
        vendor = canonical_provider(vendor)
        base, _, variant = name.partition(":")
        # ":free" variants cost nothing at OpenRouter, so they are not given the vendor's price;
        # ":beta", ":extended", ":thinking", ":nitro", ":floor" bill the vendor's price.
        if variant != "free":
            for spelling, _how in _variants(base, vendor):
                yield vendor, spelling, "normalized"
    if not provider and not prefix:
        for guess in FIRST_PARTY_ORDER:
            for name, how in _variants(model, guess):
                yield guess, name, how
        for name, how in _variants(model, "bedrock"):
            yield "bedrock", name, how


def latest_stripped(model: str) -> str:
    """``claude-3-5-sonnet-latest`` -> ``claude-3-5-sonnet``; ``""`` if there is no ``-latest``."""
    stripped = _LATEST.sub("", model)
    return stripped if stripped != model else ""
