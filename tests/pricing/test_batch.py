"""The vectorized path: the same costs as quote, unpriced rows masked, overflow handled exactly."""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.types import TokenUsage

AT = 1_780_000_000_000_000_000


def test_batch_matches_scalar_on_mixed_records(catalog: PriceCatalog) -> None:
    """Random mixed records cost the same through quote_batch as through quote, unknown names masked."""
    names = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-20250514"), ("gcp.gemini", "gemini-2.5-pro"),
             ("aws.bedrock", "eu.anthropic.claude-3-7-sonnet-20250219-v1:0"), ("openai", "unknown-x")]
    rng = np.random.default_rng(7)
    n = 5_000
    pick = rng.integers(0, len(names), n)
    providers = [names[i][0] for i in pick]
    models = [names[i][1] for i in pick]
    inp = rng.integers(0, 400_000, n)
    out = rng.integers(0, 20_000, n)
    cr = (inp * rng.random(n) * 0.5).astype(np.int64)
    cw = (inp * rng.random(n) * 0.3).astype(np.int64)
    rs = (out * rng.random(n)).astype(np.int64)
    cost, priced, index = catalog.quote_batch(providers, models, AT, inp, out, cr, cw, rs)
    keys = catalog.entry_keys()
    for i in range(n):
        q = catalog.quote(providers[i], models[i], AT, TokenUsage(int(inp[i]), int(out[i]), int(cr[i]), int(cw[i]), int(rs[i])))
        if q is None:
            assert not priced[i] and index[i] == -1 and cost[i] == 0
        else:
            assert priced[i] and cost[i] == q.cost_pusd and keys[index[i]] == q.pricing_model


def test_batch_service_tier(catalog: PriceCatalog) -> None:
    """A batch priced at the flex tier uses the flex rates."""
    cost, _, _ = catalog.quote_batch(["openai"], ["gpt-5"], [AT], [1_000_000], [0], [0], [0], [0], service_tier="flex")
    assert cost[0] == 625_000_000_000


def test_batch_huge_counts_are_exact(catalog: PriceCatalog) -> None:
    """Token counts large enough to overflow int64 femto sums are priced exactly in Python."""
    big = 200_000_000  # 1.2e19 femto-USD overflows int64; 1.2e16 pico-USD does not
    cost, priced, _ = catalog.quote_batch(["openai"], ["o1"], [AT], [0], [big], [0], [0], [0])
    q = catalog.quote("openai", "o1", AT, TokenUsage(0, big))
    assert priced[0] and q is not None and int(cost[0]) == q.cost_pusd == big * 60_000_000


def test_batch_discounted_rows_are_exact(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Rows that carry a negotiated discount are priced like quote prices them."""
    path = tmp_path / "p.toml"
    path.write_text('[[discounts]]\nprovider = "openai"\npercent = "33.3"\n')
    cat = PriceCatalog.load(overrides=path)
    cost, priced, _ = cat.quote_batch(["openai", "anthropic"], ["gpt-4o", "claude-3-haiku-20240307"], [AT, AT],
                                      [12_345, 1_000], [678, 0], [0, 0], [0, 0], [0, 0])
    for i, (p, m, u) in enumerate([("openai", "gpt-4o", TokenUsage(12_345, 678)), ("anthropic", "claude-3-haiku-20240307", TokenUsage(1_000, 0))]):
        q = cat.quote(p, m, AT, u)
        assert q is not None and priced[i] and int(cost[i]) == q.cost_pusd


def test_batch_prices_a_tenants_own_entry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tenant's own price for a model (same key as the list price) is what its rows cost, and the batch index
    names the entry it priced with; other tenants keep the list price. (The batch once priced every tenant at
    the list price: its entries were indexed by key.)"""
    path = tmp_path / "p.toml"
    path.write_text('[tenants.globex.models."openai/gpt-4o"]\ninput = "2.00"\noutput = "8.00"\n')
    cat = PriceCatalog.load(overrides=path)
    for tenant in ("globex", "acme"):
        cost, priced, entry = cat.quote_batch(["openai"], ["gpt-4o"], [AT], [1000], [100], [0], [0], [0],
                                              tenant=tenant)
        q = cat.quote("openai", "gpt-4o", AT, TokenUsage(1000, 100), tenant=tenant)
        assert q is not None and priced[0] and int(cost[0]) == q.cost_pusd
        assert cat.entry_keys()[entry[0]] == "openai/gpt-4o"
    assert int(cat.quote_batch(["openai"], ["gpt-4o"], [AT], [1000], [100], [0], [0], [0], tenant="globex")[0][0]) \
        == 2_000_000_000 + 800_000_000


def test_encoded_batch_matches_string_batch(catalog: PriceCatalog) -> None:
    """Dictionary-encoded names give the same costs as one string pair per row."""
    names = [("openai", "gpt-4o"), ("gcp.gemini", "gemini-2.5-pro"), ("openai", "nope-model"), ("openai", "o3")]
    codes = np.array([0, 1, 2, 3, 1, 0, 3])
    times = np.array([AT, AT, AT, 1_746_000_000_000_000_000, AT, 1_720_000_000_000_000_000, AT])
    inp = np.array([1000, 300_000, 5, 2000, 10, 1_000_000, 7])
    out = np.array([10, 20, 5, 3000, 0, 0, 9])
    zeros = np.zeros(7, dtype=np.int64)
    encoded = catalog.quote_batch_encoded(names, codes, times, inp, out, zeros, zeros, zeros)
    plain = catalog.quote_batch([names[c][0] for c in codes], [names[c][1] for c in codes], times, inp, out, zeros, zeros, zeros)
    for a, b in zip(encoded, plain, strict=True):
        assert (a == b).all()
    assert encoded[1].tolist() == [True, True, False, True, True, True, True]
