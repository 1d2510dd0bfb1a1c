"""Point-in-time pricing: the price in force at the span's start, and the version it records."""

from __future__ import annotations

from datetime import UTC, datetime

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.types import TokenUsage

MILLION = TokenUsage(1_000_000, 0)
USD = 10**12


def ns(text: str) -> int:
    """Nanoseconds since the epoch of an ISO date/time in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def test_gpt_4o_alias_before_and_after_the_switch(catalog: PriceCatalog) -> None:
    """gpt-4o costs $5/1M input before 2024-10-02 and $2.50 from that instant on."""
    before = catalog.quote("openai", "gpt-4o", ns("2024-10-01T23:59:59"), MILLION)
    after = catalog.quote("openai", "gpt-4o", ns("2024-10-02T00:00:00"), MILLION)
    assert before is not None and after is not None
    assert (before.cost_pusd, after.cost_pusd) == (5 * USD, 5 * USD // 2)
    assert before.price_version == "2024-05-13"
    assert after.price_version != before.price_version


def test_o3_price_cut(catalog: PriceCatalog) -> None:
    """o3 spans before 2025-06-10 keep the launch price; later ones get the 80% cut."""
    launch = catalog.quote("openai", "o3", ns("2025-05-01"), MILLION)
    cut = catalog.quote("openai", "o3", ns("2025-06-11"), MILLION)
    assert launch is not None and cut is not None
    assert (launch.cost_pusd, cut.cost_pusd) == (10 * USD, 2 * USD)


def test_gemini_15_flash_cut_applies_by_span_time(catalog: PriceCatalog) -> None:
    """Gemini 1.5 Flash spans are priced before and after the 2024-08-12 reduction as billed then."""
    usage = TokenUsage(100_000, 0)  # below the 128k band
    old = catalog.quote("gcp.gemini", "gemini-1.5-flash", ns("2024-07-01"), usage)
    new = catalog.quote("gcp.gemini", "gemini-1.5-flash", ns("2024-09-01"), usage)
    assert old is not None and new is not None
    assert (old.cost_pusd, new.cost_pusd) == (USD * 35 // 1000, USD * 75 // 10000)
    assert (old.price_version, new.price_version) == ("2024-05-14", "2024-08-12")


def test_batch_path_uses_the_same_versions(catalog: PriceCatalog) -> None:
    """quote_batch applies the version in force per row, like quote."""
    times = [ns("2024-09-01"), ns("2024-10-02"), ns("2025-05-01"), ns("2025-07-01")]
    cost, priced, _ = catalog.quote_batch(
        ["openai"] * 4, ["gpt-4o", "gpt-4o", "o3", "o3"], times, [1_000_000] * 4, [0] * 4, [0] * 4, [0] * 4, [0] * 4
    )
    assert priced.all()
    assert cost.tolist() == [5 * USD, 5 * USD // 2, 10 * USD, 2 * USD]


def test_retired_models_stay_priced(catalog: PriceCatalog) -> None:
    """Models providers retired (and LiteLLM dropped) still price last year's spans."""
    for provider, model in [("anthropic", "claude-3-opus-20240229"), ("openai", "gpt-4-32k"), ("gcp.gemini", "gemini-1.0-pro")]:
        assert catalog.quote(provider, model, ns("2024-03-01"), MILLION) is not None


def test_span_before_a_closed_first_version_is_unpriced() -> None:
    """A span older than an entry's first dated price is unpriced rather than given a later price."""
    from llm_cost_tracker.pricing._model import parse_entry

    errors: list[str] = []
    raw = {"versions": [{"version": "v1", "effective_from": "2025-01-01", "source": "test", "recorded": "2026-01-01",
                         "rates": [{"tier": "standard", "input": "1", "output": "1"}]}]}
    entry = parse_entry("acme", "m", raw, errors)
    assert not errors and entry is not None
    catalog = PriceCatalog([entry])
    assert catalog.quote("acme", "m", ns("2024-12-31"), MILLION) is None
    assert catalog.quote("acme", "m", ns("2025-01-01"), MILLION) is not None
