"""Agreement with LiteLLM's price map: for every model both catalogs hold, the same cost.

The map is the snapshot the catalog was imported from: LiteLLM 1.110.2's
``model_prices_and_context_window_backup.json`` (MIT), kept gzipped in ``testdata/`` so the test runs
without litellm installed and cannot drift when a newer litellm is released.
Reference costs are computed here from the map's own numbers with exact decimals. Documented
differences (docs/pricing.md, "Agreement with LiteLLM"):

- prices that are not whole femto-USD per token (float artefacts such as ``2.0000000000000002e-07``,
  or currency conversions such as 8/7 USD per 1M tokens) are rounded to whole femto-USD by the
  importer, so those entries may differ by half a femto-USD per token (a few pico-USD per span);
- entries whose current version came from a hand-curated file (dated history) are skipped;
- an image-generation model's output tokens are image tokens: compared at ``output_cost_per_image_token``;
- cache tokens are only compared where the map prices them (elsewhere our documented fallback rules
  apply, see "Missing dimensions").
"""

from __future__ import annotations

import gzip
import json
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.pricing._litellm import _model_name, our_provider
from llm_cost_tracker.types import TokenUsage

MAP = Path(__file__).parent / "testdata" / "litellm-1.110.2-model-prices.json.gz"
AT = 1_780_000_000_000_000_000
PROMPT, OUTPUT, CACHE_READ, CACHE_WRITE = 12_000, 3_000, 2_000, 1_000  # below every context band


def _rate(info: dict[str, object], key: str) -> Decimal | None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return Decimal(repr(value))


def _pico(usd: Decimal) -> int:
    return int((usd * 10**12).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def test_costs_agree_with_litellm_map(catalog: PriceCatalog) -> None:
    """Every model in both catalogs costs the same for the same token counts (exact, or within the documented rounding)."""
    price_map = json.loads(gzip.decompress(MAP.read_bytes()))
    compared = 0
    problems = []
    for key, info in price_map.items():
        if not isinstance(info, dict) or not isinstance(info.get("litellm_provider"), str):
            continue
        provider = our_provider(info["litellm_provider"])
        entry = catalog.entries.get(f"{provider}/{_model_name(key, info['litellm_provider'], provider)}")
        if entry is None:
            continue
        version = entry.version_at(AT)
        if version is None or f"key {key!r}" not in version.source:
            continue  # another key's prices, or a curated version
        rin, rout = _rate(info, "input_cost_per_token"), _rate(info, "output_cost_per_token")
        if info.get("mode") == "image_generation":  # output tokens are image tokens (gpt-image-1)
            rout = _rate(info, "output_cost_per_image_token") or rout
        rcr, rcw = _rate(info, "cache_read_input_token_cost"), _rate(info, "cache_creation_input_token_cost")
        fee = _rate(info, "input_cost_per_request") or _rate(info, "input_cost_per_query") or Decimal(0)
        cr = CACHE_READ if rcr is not None else 0
        cw = CACHE_WRITE if rcw is not None else 0
        reference = (
            (PROMPT - cr - cw) * (rin or 0) + OUTPUT * (rout or 0) + cr * (rcr or 0) + cw * (rcw or 0) + fee
        )
        q = catalog.quote(provider, entry.model, AT, TokenUsage(PROMPT, OUTPUT, cr, cw))
        assert q is not None, key
        compared += 1
        rates = [r for r in (rin, rout, rcr, rcw) if r is not None]
        inexact = any((r * 10**15) != (r * 10**15).to_integral_value() for r in rates)
        tolerance = (PROMPT + OUTPUT) // 2000 + 1 if inexact else 0  # half a femto-USD per token at most
        if abs(q.cost_pusd - _pico(reference)) > tolerance:
            problems.append(f"{key}: ours {q.cost_pusd} vs map {_pico(reference)}")
    assert compared >= 400, compared
    assert not problems, problems[:10]


def test_every_map_provider_of_issue_3_is_present(catalog: PriceCatalog) -> None:
    """Every provider family issue 3 lists has entries in our catalog."""
    providers = set(catalog.providers())
    for wanted in ("openai", "azure", "anthropic", "bedrock", "gemini", "vertex_ai", "mistral", "cohere",
                   "deepseek", "xai", "groq", "together_ai", "fireworks_ai"):
        assert wanted in providers, wanted
    named = [e for e in catalog.entries.values() if e.provider in {
        "openai", "azure", "anthropic", "bedrock", "gemini", "vertex_ai", "mistral", "cohere", "deepseek",
        "xai", "groq", "together_ai", "fireworks_ai", "voyage"}]
    assert len(named) >= 400
    assert sum(e.mode == "embedding" for e in catalog.entries.values()) >= 30
