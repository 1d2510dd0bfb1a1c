"""The user price file: discounts, aliases (Azure deployments), custom, self-hosted and tenant prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_cost_tracker.pricing import CatalogError, PriceCatalog
from llm_cost_tracker.types import TokenUsage

DATA = Path(__file__).parent / "testdata"
AT = 1_780_000_000_000_000_000
M = 1_000_000
MILLION = TokenUsage(1_000_000, 0)


@pytest.fixture(scope="module")
def toml_catalog() -> PriceCatalog:
    """The bundled catalog with testdata/prices.toml."""
    return PriceCatalog.load(overrides=DATA / "prices.toml")


def test_tenant_discount_applies_only_to_that_tenant(toml_catalog: PriceCatalog) -> None:
    """A 20% discount for tenant acme lowers acme's gpt-4o cost and nobody else's."""
    acme = toml_catalog.quote("openai", "gpt-4o", AT, MILLION, tenant="acme")
    other = toml_catalog.quote("openai", "gpt-4o", AT, MILLION, tenant="initech")
    assert acme is not None and other is not None
    assert (acme.cost_pusd, other.cost_pusd) == (2_000_000 * M, 2_500_000 * M)
    assert acme.breakdown["discount"] == -500_000 * M


def test_fractional_percent_discount_is_exact(toml_catalog: PriceCatalog) -> None:
    """A 12.5% provider-wide discount is applied exactly."""
    whole = toml_catalog.quote("anthropic", "claude-3-haiku-20240307", AT, TokenUsage(1, 0))
    assert whole is not None and whole.cost_pusd == 218_750  # 250,000 pico-USD * 0.875
    cached = toml_catalog.quote("anthropic", "claude-3-haiku-20240307", AT, TokenUsage(1, 0, cache_read_tokens=1))
    assert cached is not None and cached.cost_pusd == 26_250  # 30,000 pico-USD * 0.875


def test_azure_deployment_alias(toml_catalog: PriceCatalog) -> None:
    """An Azure deployment name mapped in the price file prices as its model."""
    q = toml_catalog.quote("az.ai.openai", "prod-gpt4o-eastus", AT, MILLION)
    assert q is not None and q.pricing_model == "azure/gpt-4o-2024-08-06" and q.match == "alias"


def test_custom_fine_tuned_model(toml_catalog: PriceCatalog) -> None:
    """A fine-tuned model from the price file is priced with its own rates."""
    q = toml_catalog.quote("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", AT, TokenUsage(1_000_000, 1_000_000))
    assert q is not None and q.cost_pusd == 1_500_000 * M


def test_self_hosted_gpu_hour_rate(toml_catalog: PriceCatalog) -> None:
    """A self-hosted model costs its GPU-hour price divided by its hourly token throughput."""
    q = toml_catalog.quote("selfhosted", "llama-3-70b", AT, TokenUsage(3_600_000, 0))
    assert q is not None
    assert abs(q.cost_pusd - 2_500_000_000_000) <= 3_600_000 // 2000 + 1  # per-token rate rounded to femto


def test_tenant_specific_prices(toml_catalog: PriceCatalog) -> None:
    """A tenant's own price for a model replaces the list price for that tenant only."""
    globex = toml_catalog.quote("openai", "gpt-4o", AT, MILLION, tenant="globex")
    anyone = toml_catalog.quote("openai", "gpt-4o", AT, MILLION)
    assert globex is not None and anyone is not None
    assert (globex.cost_pusd, anyone.cost_pusd) == (2_000_000 * M, 2_500_000 * M)


def test_yaml_price_file_with_request_fee() -> None:
    """A YAML price file works too, and a per-request fee is added once per span."""
    cat = PriceCatalog.load(overrides=DATA / "prices.yaml")
    q = cat.quote("acme", "house-model", AT, TokenUsage(1_000, 1_000))
    assert q is not None
    assert q.breakdown == {"input": 1_000 * M, "output": 2_000 * M, "request": 1_000_000_000}
    alias = cat.quote("azure", "my-deployment", AT, MILLION)
    assert alias is not None and alias.pricing_model == "azure/gpt-4o-mini"


def test_invalid_price_file_reports_every_error() -> None:
    """An invalid price file fails the load and lists all of its problems."""
    with pytest.raises(CatalogError) as info:
        PriceCatalog.load(overrides=DATA / "bad_prices.toml")
    text = "\n".join(info.value.errors)
    assert "percent" in text and "no-slash" in text and "bad-price.versions[0].rates[0].input" in text
    assert "bad-price.versions[0].rates[0].output" in text


def test_rounding_is_half_to_even() -> None:
    """Femto-USD totals round to pico-USD once, half to even."""
    from llm_cost_tracker.pricing._money import femto_to_pico, scale_femto

    assert [femto_to_pico(x) for x in (499, 500, 501, 1500, 2500, 2501)] == [0, 0, 1, 2, 2, 3]
    assert scale_femto(1000, 7, 8) == 875 and scale_femto(3, 1, 2) == 2 and scale_femto(5, 1, 2) == 2
