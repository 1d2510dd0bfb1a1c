"""The user price file (TOML or YAML): discounts, aliases, custom and per-tenant models.

Schema (documented with examples in docs/pricing.md)::

    [[discounts]]                     # first match wins; every key but percent optional
    provider = "openai"
    model = "gpt-4o*"                 # glob on the catalog model name
    tenant = "acme"
    percent = "12.5"                  # off list price

    [aliases]                         # Azure deployment names and other private names
    "azure/prod-gpt4o" = "azure/gpt-4o-2024-08-06"

    [models."openai/ft:gpt-4o-mini:acme::x1"]   # short form (USD per 1M tokens), or a full entry
    input = "0.30"
    output = "1.20"

    [models."selfhosted/llama-3-70b"]           # self-hosted: GPU-hour cost over throughput
    gpu_hour_usd = "2.50"
    tokens_per_gpu_hour = 3600000

    [tenants.acme.models."openai/gpt-4o"]       # a tenant's own prices, same forms as models
    input = "2.00"
    output = "8.00"
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_cost_tracker.pricing import _names
from llm_cost_tracker.pricing._model import DIMENSIONS, Entry, parse_entry
from llm_cost_tracker.pricing._money import (
    FEMTO_PER_USD,
    PriceError,
    femto_to_per_mtok,
    parse_decimal,
    scale_femto,
)

_TOP_KEYS = frozenset({"discounts", "aliases", "models", "tenants"})
_SHORT_KEYS = frozenset(DIMENSIONS) | {
    "effective_from", "effective_to", "source", "mode", "gpu_hour_usd", "tokens_per_gpu_hour", "version",
}


@dataclass(frozen=True, slots=True)
class Discount:
    """A negotiated percentage off list price, for the entries (and tenant) it matches."""

    percent: str
    multiplier: tuple[int, int]
    provider: str = ""
    model: str = "*"
    tenant: str = ""

    def matches(self, entry: Entry, tenant: str) -> bool:
        """Whether the discount applies to ``entry`` when priced for ``tenant``."""
        return (
            (not self.provider or self.provider == entry.provider)
            and (not self.tenant or self.tenant == tenant)
            and fnmatch.fnmatchcase(entry.model.lower(), self.model.lower())
        )


@dataclass(frozen=True, slots=True)
class Overrides:
    """A parsed user price file. Empty by default."""

    entries: tuple[Entry, ...] = ()
    tenant_entries: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict)
    aliases: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    discounts: tuple[Discount, ...] = ()
    path: str = ""

    def discount_for(self, entry: Entry, tenant: str) -> tuple[int, int] | None:
        """The price multiplier ``(num, den)`` of the first matching discount, or None."""
        for discount in self.discounts:
            if discount.matches(entry, tenant):
                return discount.multiplier
        return None


def _split_key(key: str, where: str, errors: list[str]) -> tuple[str, str] | None:
    provider, sep, model = str(key).partition("/")
    if not sep or not provider or not model:
        errors.append(f"{where}: {key!r} must be 'provider/model'")
        return None
    return _names.canonical_provider(provider), model


def _short_form(raw: Mapping[str, Any], where: str, errors: list[str]) -> dict[str, Any]:
    """A full entry from the short form (flat rates, or a GPU-hour cost over a throughput)."""
    unknown = set(raw) - _SHORT_KEYS
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)}")
    card: dict[str, Any] = {dim: str(raw[dim]) for dim in DIMENSIONS if dim in raw}
    source = str(raw.get("source") or "user price file")
    if "gpu_hour_usd" in raw or "tokens_per_gpu_hour" in raw:
        try:
            hour = parse_decimal(raw.get("gpu_hour_usd"))
            tokens = int(raw.get("tokens_per_gpu_hour", 0))
            if tokens <= 0:
                raise PriceError("tokens_per_gpu_hour must be a positive integer")
            num, den = hour.as_integer_ratio()
            # femto-USD per token, rounded half to even once (documented in docs/pricing.md)
            rate = scale_femto(FEMTO_PER_USD, num, den * tokens)
            card.setdefault("input", femto_to_per_mtok(rate))
            card.setdefault("output", femto_to_per_mtok(rate))
            source = f"{source}: {hour} USD per GPU-hour / {tokens} tokens per GPU-hour"
        except (PriceError, ValueError, TypeError) as exc:
            errors.append(f"{where}: {exc}")
    version = {
        "version": str(raw.get("version") or raw.get("effective_from") or "user"),
        "effective_from": raw.get("effective_from"),
        "effective_to": raw.get("effective_to"),
        "source": source,
        "recorded": datetime.now(UTC).date().isoformat(),
        "rates": [card],
    }
    return {"mode": raw.get("mode", "chat"), "versions": [version]}


def _entries(models: object, where: str, errors: list[str]) -> tuple[Entry, ...]:
    if not isinstance(models, Mapping):
        errors.append(f"{where}: must be a table of 'provider/model' = prices")
        return ()
    out = []
    for key, raw in models.items():
        split = _split_key(key, f"{where}.{key}", errors)
        if split is None or not isinstance(raw, Mapping):
            if split is not None:
                errors.append(f"{where}.{key}: must be a table")
            continue
        full = raw if "versions" in raw else _short_form(raw, f"{where}.{key}", errors)
        entry = parse_entry(split[0], split[1], full, errors)
        if entry is not None:
            out.append(entry)
    return tuple(out)


def _discounts(raw: object, errors: list[str]) -> tuple[Discount, ...]:
    if not isinstance(raw, list):
        errors.append("discounts: must be a list of tables")
        return ()
    out = []
    for i, item in enumerate(raw):
        where = f"discounts[{i}]"
        if not isinstance(item, Mapping):
            errors.append(f"{where}: must be a table")
            continue
        unknown = set(item) - {"provider", "model", "tenant", "percent"}
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        try:
            percent = parse_decimal(item.get("percent"))
        except PriceError as exc:
            errors.append(f"{where}.percent: {exc}")
            continue
        if percent > 100:
            errors.append(f"{where}.percent: must be between 0 and 100")
            continue
        num, den = percent.as_integer_ratio()
        out.append(
            Discount(
                percent=str(percent),
                multiplier=(100 * den - num, 100 * den),
                provider=_names.canonical_provider(str(item.get("provider") or "")),
                model=str(item.get("model") or "*"),
                tenant=str(item.get("tenant") or ""),
            )
        )
    return tuple(out)


def parse_overrides(doc: object, errors: list[str], path: str = "") -> Overrides:
    """An :class:`Overrides` from a parsed TOML/YAML document; problems go to ``errors``."""
    if doc is None:
        return Overrides(path=path)
    if not isinstance(doc, Mapping):
        errors.append(f"{path}: the price file must be a table")
        return Overrides(path=path)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        errors.append(f"{path}: unknown sections {sorted(unknown)}")
    aliases: dict[tuple[str, str], tuple[str, str]] = {}
    for name, target in dict(doc.get("aliases") or {}).items():
        source_key = _split_key(name, f"aliases.{name}", errors)
        target_key = _split_key(str(target), f"aliases.{name}", errors)
        if source_key and target_key:
            aliases[source_key] = target_key
    tenants: dict[str, tuple[Entry, ...]] = {}
    for tenant, section in dict(doc.get("tenants") or {}).items():
        models = section.get("models", {}) if isinstance(section, Mapping) else None
        tenants[str(tenant)] = _entries(models, f"tenants.{tenant}.models", errors)
    return Overrides(
        entries=_entries(doc.get("models") or {}, "models", errors),
        tenant_entries=tenants,
        aliases=aliases,
        discounts=_discounts(doc.get("discounts") or [], errors),
        path=path,
    )


def load_overrides(path: str | Path, errors: list[str]) -> Overrides:
    """Read and parse a user price file (``.toml``, ``.yaml`` or ``.yml``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        errors.append(f"{path}: {exc}")
        return Overrides(path=str(path))
    try:
        if path.suffix == ".toml":
            doc: object = tomllib.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is reported, not raised
        errors.append(f"{path}: cannot parse: {exc}")
        return Overrides(path=str(path))
    return parse_overrides(doc, errors, str(path))
