"""Importer: LiteLLM's model price map -> our data files (``pricing/data/<provider>.json``).

LiteLLM prices are float USD per token; each is read through its ``repr`` as a Decimal (never float
arithmetic) and written as USD per million tokens. A float that is not a whole number of femto-USD
per token (LiteLLM's own float artefacts such as ``2.0000000000000002e-07``) is rounded half to
even to femto-USD and the version's ``note`` says so. Re-importing keeps history: an entry whose
price changed gets its old version closed and a new dated version; an entry the map dropped
(a retired model) stays as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from llm_cost_tracker.pricing._model import SCHEMA_VERSION, USD_DIMENSIONS

_BASES = {
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "cache_creation_input_token_cost": "cache_write",
    "cache_read_input_token_cost": "cache_read",
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "input_audio",
    "output_cost_per_audio_token": "output_audio",
    "input_cost_per_image_token": "input_image",
    "output_cost_per_image_token": "output_image",
    "input_cost_per_request": "per_request",
    "input_cost_per_query": "per_request",  # rerankers: one query (search unit) is one request
    "input_cost_per_second": "per_input_second",
    "output_cost_per_second": "per_output_second",
    "input_cost_per_character": "per_input_character",
    "output_cost_per_character": "per_output_character",
    "input_cost_per_image": "per_input_image",
    "output_cost_per_image": "per_output_image",
}
_SEARCH = "search_context_cost_per_query"
"""LiteLLM's web-search price: ``{"search_context_size_low": ..., "_medium": ..., "_high": ...}`` USD per
query. The span does not say which context size was asked for, so the medium price (OpenAI's default) is
imported as ``per_search``."""
_KEY = re.compile(
    r"^(?P<base>" + "|".join(sorted(_BASES, key=len, reverse=True)) + r")"
    r"(?:_above_(?P<k>\d+)k_tokens)?(?:_(?P<tier>batches|flex|priority))?$"
)
_TIERS = {None: "standard", "batches": "batch", "flex": "flex", "priority": "priority"}
_PROVIDERS = {
    "text-completion-openai": "openai",
    "azure_text": "azure",
    "bedrock_converse": "bedrock",
    "text-completion-codestral": "codestral",  # the free codestral.mistral.ai endpoint, not api.mistral.ai
    "cohere_chat": "cohere",
}
_FEMTO = Decimal(10) ** -15
_MILLION = Decimal(10**6)


def our_provider(litellm_provider: str) -> str:
    """The catalog provider id for a LiteLLM ``litellm_provider`` value."""
    for family in ("vertex_ai", "fireworks_ai"):
        if litellm_provider.startswith(family):
            return family
    return _PROVIDERS.get(litellm_provider, litellm_provider)


def _model_name(key: str, litellm_provider: str, provider: str) -> str:
    for prefix in (f"{litellm_provider}/", f"{provider}/"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _plain(dec: Decimal) -> str:
    return format(dec.normalize(), "f")


def convert_rates(info: Mapping[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """Our rate cards (standard first) from one LiteLLM entry's ``*_cost_*`` fields."""
    cards: dict[tuple[str, int], dict[str, Any]] = {}
    for field, value in info.items():
        match = _KEY.match(field)
        if not match or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        dim = _BASES[match["base"]]
        usd = Decimal(repr(value))
        if usd < 0:
            notes.append(f"skipped negative {field}")
            continue
        exact = usd.quantize(_FEMTO, rounding=ROUND_HALF_EVEN)
        if exact != usd:
            notes.append(f"{field} {usd} rounded to whole femto-USD {_plain(exact)}")
        above = int(match["k"]) * 1000 if match["k"] else 0
        card = cards.setdefault((_TIERS[match["tier"]], above), {})
        card[dim] = _plain(exact) if dim in USD_DIMENSIONS else _plain(exact * _MILLION)
    search = info.get(_SEARCH)
    if isinstance(search, Mapping):
        medium = search.get("search_context_size_medium")
        if isinstance(medium, (int, float)) and not isinstance(medium, bool) and medium >= 0:
            cards.setdefault(("standard", 0), {})["per_search"] = _plain(
                Decimal(repr(medium)).quantize(_FEMTO, rounding=ROUND_HALF_EVEN))
    order = {"standard": 0, "batch": 1, "flex": 2, "priority": 3}
    out = []
    for (tier, above), rates in sorted(cards.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        head: dict[str, Any] = {"tier": tier}
        if above:
            head["above_input_tokens"] = above
        dims = [*dict.fromkeys(_BASES.values()), "per_search"]
        out.append({**head, **dict(sorted(rates.items(), key=lambda kv: dims.index(kv[0])))})
    return out


def _priced(info: Mapping[str, Any]) -> bool:
    """Whether the entry has a price of some unit we import (tokens, seconds, characters, images, requests)."""
    return any(isinstance(info.get(k), (int, float)) and not isinstance(info.get(k), bool) for k in _BASES)


def convert(
    price_map: Mapping[str, Any],
    *,
    source: str,
    recorded: str,
    version: str,
    providers: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{provider: {model: entry}}`` for every token-priced model in LiteLLM's map.

    Args:
        price_map: the parsed ``model_prices_and_context_window_backup.json``.
        source: what to record as the source of every price.
        recorded: the ISO date the prices were read.
        version: the version id to give the imported prices (e.g. ``litellm-1.110.2``).
        providers: restrict to these catalog provider ids.
    """
    wanted = set(providers) if providers else None
    out: dict[str, dict[str, Any]] = {}
    canonical: dict[tuple[str, str], tuple[int, bool, tuple[Any, Any]]] = {}
    aliases: list[tuple[str, str]] = []
    for key, info in price_map.items():
        if not isinstance(info, Mapping) or key == "sample_spec":
            continue
        if "alias_of" in info:
            aliases.append((key, str(info["alias_of"])))
            continue
        lp = info.get("litellm_provider")
        if not isinstance(lp, str) or not _priced(info):
            continue
        provider = our_provider(lp)
        if wanted is not None and provider not in wanted:
            continue
        model = _model_name(key, lp, provider)
        # two keys can name one model: prefer the unprefixed key, then the provider's native id; but when their
        # text prices disagree, the key LiteLLM itself prices the call with (``<litellm_provider>/<model>``):
        # in 1.110.2 ``gemini-exp-1206`` carries a copy of gemini-2.5-flash-preview's prices (its ``source`` says
        # so) while ``gemini/gemini-exp-1206`` has the free experimental model's $0 (docs/pricing.md)
        rank = 2 if model == key else 1 if lp == provider else 0
        routed = key == f"{lp}/{model}"
        notes: list[str] = []
        rates = convert_rates(info, notes)
        if not any(card.get("tier") == "standard" and "above_input_tokens" not in card for card in rates):
            continue
        base = next((c.get("input"), c.get("output")) for c in rates
                    if c.get("tier") == "standard" and "above_input_tokens" not in c)
        kept = canonical.get((provider, model))
        if kept is not None:
            kept_rank, kept_routed, kept_base = kept
            if kept_base != base and routed != kept_routed:
                if kept_routed:
                    continue
            elif kept_rank >= rank:
                continue
        cite = f"{source}, key {key!r}"
        if isinstance(info.get("source"), str):
            cite += f"; upstream {info['source']}"
        priced: dict[str, Any] = {
            "version": version,
            "effective_from": None,
            "effective_to": None,
            "source": cite,
            "recorded": recorded,
            "rates": rates,
        }
        if notes:
            priced["note"] = "; ".join(notes)
        entry: dict[str, Any] = {"mode": info.get("mode") or "chat"}
        if isinstance(info.get("deprecation_date"), str):
            entry["deprecation_date"] = info["deprecation_date"]
        entry["versions"] = [priced]
        out.setdefault(provider, {})[model] = entry
        canonical[(provider, model)] = (rank, routed, base)
    for key, target in aliases:
        info = price_map.get(target)
        if not isinstance(info, Mapping) or not isinstance(info.get("litellm_provider"), str):
            continue
        lp = info["litellm_provider"]
        provider = our_provider(lp)
        aliased: dict[str, Any] | None = out.get(provider, {}).get(_model_name(target, lp, provider))
        if aliased is not None:
            alias = _model_name(key, lp, provider).split("/")[-1]
            aliased.setdefault("aliases", [])
            if alias not in aliased["aliases"]:
                aliased["aliases"].append(alias)
    return out


def _same_prices(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(a.get("rates") == b.get("rates"))


def merge(existing: Mapping[str, Any], fresh: Mapping[str, Any], recorded: str) -> dict[str, Any]:
    """Models of one provider after a re-import: history kept, changed prices get a new version."""
    merged = {name: dict(entry) for name, entry in existing.items()}
    for name, entry in fresh.items():
        old = merged.get(name)
        if old is None:
            merged[name] = entry
            continue
        versions = [dict(v) for v in old.get("versions", [])]
        new = entry["versions"][0]
        current = next((v for v in reversed(versions) if v.get("effective_to") is None), None)
        if current is not None and _same_prices(current, new):
            merged[name] = {**entry, "aliases": sorted(set(old.get("aliases", [])) | set(entry.get("aliases", [])))}
            merged[name]["versions"] = versions
            if not merged[name]["aliases"]:
                del merged[name]["aliases"]
            continue
        if current is not None:
            current["effective_to"] = recorded
        ids = {v.get("version") for v in versions}
        new = {**new, "effective_from": recorded}
        if new["version"] in ids:
            new["version"] = f"{new['version']}-{recorded}"
        merged[name] = {**entry, "versions": [*versions, new]}
    return dict(sorted(merged.items()))


def render(provider: str, models: Mapping[str, Any], generated_by: str) -> str:
    """A data file's text: JSON with one line per rate card, so diffs stay readable."""
    lines = [
        "{",
        f' "schema_version": {SCHEMA_VERSION},',
        f' "provider": {json.dumps(provider)},',
        f' "generated_by": {json.dumps(generated_by)},',
        ' "models": {',
    ]
    names = list(models)
    for i, name in enumerate(names):
        entry = models[name]
        head = {k: v for k, v in entry.items() if k != "versions"}
        head_text = json.dumps(head)[1:-1]
        lines.append(f"  {json.dumps(name)}: {{{head_text}{', ' if head_text else ''}\"versions\": [")
        versions = entry["versions"]
        for j, version in enumerate(versions):
            meta = {k: v for k, v in version.items() if k != "rates"}
            lines.append(f"   {{{json.dumps(meta)[1:-1]}, \"rates\": [")
            cards = version["rates"]
            for c, card in enumerate(cards):
                lines.append(f"    {json.dumps(card)}{',' if c < len(cards) - 1 else ''}")
            lines.append(f"   ]}}{',' if j < len(versions) - 1 else ''}")
        lines.append(f"  ]}}{',' if i < len(names) - 1 else ''}")
    lines.extend([" }", "}", ""])
    return "\n".join(lines)


def import_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    recorded: str,
    litellm_version: str = "",
    providers: Iterable[str] | None = None,
) -> dict[str, int]:
    """Convert LiteLLM's map at ``path`` into ``out_dir/<provider>.json``; entries written per provider."""
    path, out_dir = Path(path), Path(out_dir)
    price_map = json.loads(path.read_text(encoding="utf-8"))
    label = f"litellm-{litellm_version}" if litellm_version else f"litellm-{recorded}"
    source = f"LiteLLM {path.name}" + (f" (litellm {litellm_version})" if litellm_version else "")
    fresh = convert(price_map, source=source, recorded=recorded, version=label, providers=providers)
    counts = {}
    for provider, models in sorted(fresh.items()):
        target = out_dir / f"{provider.replace('/', '_')}.json"
        existing: Mapping[str, Any] = {}
        if target.exists():
            existing = json.loads(target.read_text(encoding="utf-8")).get("models", {})
        merged = merge(existing, models, recorded)
        target.write_text(render(provider, merged, f"llm-cost-tracker pricing import {path.name}"), encoding="utf-8")
        counts[provider] = len(merged)
    return counts
