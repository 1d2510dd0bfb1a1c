"""Catalog entries: the data-file schema, its validation and the resolved, immutable price model.

A data file (``pricing/data/<provider>.json``, or a user price file) holds entries, one per model per
provider. Each entry has dated price *versions*; each version has *rate cards*, one per service tier
and context band. Parsing resolves every card completely (documented fallbacks for dimensions a
card leaves out), so pricing a span never has to look anything up twice. See ``docs/pricing.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from llm_cost_tracker.pricing._money import PriceError, per_mtok_to_femto, usd_to_femto

SCHEMA_VERSION = 1

TOKEN_DIMENSIONS = (
    "input",
    "output",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "reasoning",
    "input_audio",
    "output_audio",
    "input_image",
    "output_image",
)
"""Per-token dimensions, priced in USD per million tokens in the data files."""

UNIT_DIMENSIONS = (
    "per_input_second",
    "per_output_second",
    "per_input_character",
    "per_output_character",
    "per_input_image",
    "per_output_image",
    "per_search",
)
"""Prices per unit that is not a token, in USD per unit in the data files: a second of audio or video
(transcription, video generation), a character (speech), an image (input or generated), a web-search
query. A card that leaves one out cannot price it: a span that uses it is 'partial' (docs/pricing.md)."""

FEE_DIMENSIONS = ("per_request",)
"""Flat fees, in USD per request in the data files (left out: no fee)."""

USD_DIMENSIONS = UNIT_DIMENSIONS + FEE_DIMENSIONS
"""Dimensions priced in USD per unit (the rest in USD per million tokens)."""

DIMENSIONS = TOKEN_DIMENSIONS + USD_DIMENSIONS
SERVICE_TIERS = ("standard", "batch", "flex", "priority")
_CARD_KEYS = frozenset(DIMENSIONS) | {"tier", "above_input_tokens"}
_VERSION_KEYS = frozenset(
    {"version", "effective_from", "effective_to", "source", "recorded", "rates", "note"}
)
_ENTRY_KEYS = frozenset({"mode", "aliases", "deprecation_date", "versions", "note"})


class CatalogError(ValueError):
    """Invalid catalog data; ``errors`` lists every problem found, each prefixed by where it is."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors[:5]) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class RateCard:
    """Fully resolved rates of one service tier above one prompt size, in femto-USD.

    ``above_input_tokens`` is the band's lower bound: the card applies to a request whose prompt
    (``input_tokens``, cached tokens included) is strictly larger. ``fallbacks`` names every
    dimension whose rate was not in the data, as ``"cache_write=1.25*input"``.
    """

    above_input_tokens: int
    input: int
    output: int
    cache_read: int
    cache_write: int
    cache_write_1h: int
    reasoning: int
    input_audio: int
    output_audio: int
    input_image: int
    output_image: int
    per_input_second: int
    per_output_second: int
    per_input_character: int
    per_output_character: int
    per_input_image: int
    per_output_image: int
    per_search: int
    per_request: int
    fallbacks: tuple[str, ...] = ()
    missing: frozenset[str] = frozenset()
    """Dimensions this card has no price for, not even a documented fallback: usage in one of them
    makes a span 'partial', never priced at $0 (the zero rule)."""

    def rate(self, dimension: str) -> int:
        """The rate of one dimension by name."""
        return int(getattr(self, dimension))


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """The prices of one model in force from ``effective_from_ns`` (inclusive) to ``effective_to_ns``.

    ``None`` bounds are open. ``tiers`` maps a service tier to its bands, highest threshold first.
    """

    version: str
    effective_from_ns: int | None
    effective_to_ns: int | None
    source: str
    recorded: str
    tiers: Mapping[str, tuple[RateCard, ...]]

    def contains(self, at_ns: int) -> bool:
        """Whether the version is in force at ``at_ns``."""
        return (self.effective_from_ns is None or at_ns >= self.effective_from_ns) and (
            self.effective_to_ns is None or at_ns < self.effective_to_ns
        )

    def card(self, tier: str, input_tokens: int) -> tuple[RateCard, str]:
        """The card for a service tier and prompt size, and the tier actually used."""
        bands = self.tiers.get(tier)
        if bands is None:
            tier = "standard"
            bands = self.tiers["standard"]
        for card in bands:
            if input_tokens > card.above_input_tokens:
                return card, tier
        return bands[-1], tier

    @property
    def standard(self) -> RateCard:
        """The base card: standard tier, smallest prompts."""
        return self.tiers["standard"][-1]


@dataclass(frozen=True, slots=True)
class Entry:
    """One model at one provider, with its dated price versions (oldest first)."""

    provider: str
    model: str
    mode: str
    versions: tuple[PriceVersion, ...]
    aliases: tuple[str, ...] = ()
    deprecation_date: str | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.provider}/{self.model}")

    def version_at(self, at_ns: int) -> PriceVersion | None:
        """The version in force at ``at_ns``, or None (before the first price or in a gap)."""
        for version in reversed(self.versions):
            if version.contains(at_ns):
                return version
        return None

    @property
    def latest(self) -> PriceVersion:
        """The newest version."""
        return self.versions[-1]


def date_to_ns(value: object, where: str, errors: list[str]) -> int | None:
    """Nanoseconds since the epoch (UTC midnight for a bare date) from an ISO date or datetime."""
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        else:
            moment = datetime.fromisoformat(str(value))
    except ValueError:
        errors.append(f"{where}: not an ISO date: {value!r}")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _is_anthropic_model(provider: str, model: str) -> bool:
    return provider == "anthropic" or "claude" in model


def _dimension_fallback(dim: str, provider: str, model: str, card: dict[str, int]) -> tuple[int, str]:
    """The documented rate of a dimension a card leaves out, with a label for ``fallbacks``."""
    if dim == "cache_write" and _is_anthropic_model(provider, model):
        return card["input"] * 5 // 4, "cache_write=1.25*input"  # Anthropic: 5-minute writes cost 1.25x
    if dim == "cache_write_1h":
        if _is_anthropic_model(provider, model):
            return card["input"] * 2, "cache_write_1h=2*input"  # Anthropic: 1-hour writes cost 2x
        return card["cache_write"], "cache_write_1h=cache_write"
    if dim in ("cache_read", "cache_write", "input_audio", "input_image"):
        return card["input"], f"{dim}=input"
    if dim in ("reasoning", "output_audio", "output_image"):
        return card["output"], f"{dim}=output"
    return 0, ""  # per-unit prices: none (missing); per_request: no fee


_FALLBACK_ORDER = (*TOKEN_DIMENSIONS, *USD_DIMENSIONS)


def missing_dimensions(fallbacks: Iterable[str], declared: Iterable[str]) -> frozenset[str]:
    """Dimensions without a price: an undeclared input/output (``"input=0"``), a fallback onto one of
    them (``"cache_read=input"``), and every undeclared per-unit price."""
    missing: set[str] = set()
    for label in fallbacks:
        dim, _, rule = label.partition("=")
        if rule == "0" or rule.rpartition("*")[2] in missing:
            missing.add(dim)
    missing.update(dim for dim in UNIT_DIMENSIONS if dim not in declared)
    return frozenset(missing)


def _parse_card(raw: Mapping[str, Any], where: str, errors: list[str]) -> tuple[str, int, dict[str, int]]:
    unknown = set(raw) - _CARD_KEYS
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)}")
    tier = str(raw.get("tier", "standard"))
    if tier not in SERVICE_TIERS:
        errors.append(f"{where}: tier must be one of {SERVICE_TIERS}, not {tier!r}")
    above = raw.get("above_input_tokens", 0)
    if not isinstance(above, int) or isinstance(above, bool) or above < 0:
        errors.append(f"{where}: above_input_tokens must be an integer >= 0")
        above = 0
    rates: dict[str, int] = {}
    for dim in DIMENSIONS:
        if dim in raw and raw[dim] is not None:
            try:
                rates[dim] = usd_to_femto(raw[dim]) if dim in USD_DIMENSIONS else per_mtok_to_femto(raw[dim])
            except PriceError as exc:
                errors.append(f"{where}.{dim}: {exc}")
    return tier, above, rates


_RESOLVED: dict[tuple[object, ...], dict[str, tuple[RateCard, ...]]] = {}
"""Resolved tiers by (declared cards, whether Anthropic's cache rules apply): the only inputs they depend on.
More than half of the bundled versions repeat another's rates (regional and reseller copies of a model), and
resolving is most of loading the catalog. Cards are immutable, so versions share them."""
_RESOLVED_LIMIT = 20_000


def _resolved_tiers(
    declared: dict[tuple[str, int], dict[str, int]], provider: str, model: str, where: str, errors: list[str]
) -> dict[str, tuple[RateCard, ...]]:
    """:func:`_resolve_tiers`, remembered for declarations that resolve without a problem."""
    key = (tuple(sorted((card, tuple(sorted(rates.items()))) for card, rates in declared.items())),
           _is_anthropic_model(provider, model))
    found = _RESOLVED.get(key)
    if found is not None:
        return dict(found)
    problems = len(errors)
    tiers = _resolve_tiers(declared, provider, model, where, errors)
    if len(errors) == problems and tiers:
        if len(_RESOLVED) >= _RESOLVED_LIMIT:
            _RESOLVED.clear()
        _RESOLVED[key] = tiers
    return dict(tiers)


def _resolve_tiers(
    declared: dict[tuple[str, int], dict[str, int]], provider: str, model: str, where: str, errors: list[str]
) -> dict[str, tuple[RateCard, ...]]:
    """Fill every card completely; see "Missing dimensions" in docs/pricing.md."""
    if ("standard", 0) not in declared:
        errors.append(f"{where}: needs a standard card with above_input_tokens 0")
        return {}
    base = declared[("standard", 0)]
    if not base:
        errors.append(f"{where}: the standard card needs at least one price")
    tiers: dict[str, tuple[RateCard, ...]] = {}
    std_bands = sorted({above for tier, above in declared if tier == "standard"})
    for tier in SERVICE_TIERS:
        own = sorted({above for t, above in declared if t == tier})
        if not own:
            continue
        bands = sorted(set(own) | set(std_bands))
        previous: dict[str, int] = {}
        previous_fallbacks: tuple[str, ...] = ()
        previous_present: set[str] = set()
        cards = []
        for above in bands:
            values: dict[str, int] = {}
            fallbacks: list[str] = []
            present: set[str] = set()
            for dim in _FALLBACK_ORDER:
                for source in ((tier, above), ("standard", above)):
                    if dim in declared.get(source, {}):
                        values[dim] = declared[source][dim]
                        present.add(dim)
                        break
                else:
                    label = ""
                    if dim in previous and not any(f.startswith(dim + "=") for f in previous_fallbacks) and (
                            dim not in UNIT_DIMENSIONS or dim in previous_present):
                        values[dim] = previous[dim]  # declared in a lower band of this tier
                        present.add(dim)
                    elif dim in previous and dim in ("input", "output"):
                        values[dim] = previous[dim]
                        label = f"{dim}=0"
                    elif dim == "input" or dim == "output":
                        values[dim] = 0
                        label = f"{dim}=0"
                    else:
                        values[dim], label = _dimension_fallback(dim, provider, model, values)
                    if label:
                        fallbacks.append(label)
            cards.append(RateCard(above_input_tokens=above, fallbacks=tuple(fallbacks),
                                  missing=missing_dimensions(fallbacks, present), **values))
            previous, previous_fallbacks, previous_present = values, tuple(fallbacks), present
        tiers[tier] = tuple(reversed(cards))
    return tiers


def parse_version(
    raw: Mapping[str, Any], provider: str, model: str, where: str, errors: list[str]
) -> PriceVersion | None:
    """One price version from its data-file form; problems go to ``errors``."""
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: a version must be a mapping")
        return None
    unknown = set(raw) - _VERSION_KEYS
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)}")
    for required in ("version", "source", "recorded", "rates"):
        if not raw.get(required):
            errors.append(f"{where}: missing {required}")
    start = date_to_ns(raw.get("effective_from"), f"{where}.effective_from", errors)
    end = date_to_ns(raw.get("effective_to"), f"{where}.effective_to", errors)
    if start is not None and end is not None and end <= start:
        errors.append(f"{where}: effective_to must be after effective_from")
    declared: dict[tuple[str, int], dict[str, int]] = {}
    cards = raw.get("rates") or []
    if not isinstance(cards, list):
        errors.append(f"{where}.rates: must be a list")
        cards = []
    for i, card in enumerate(cards):
        if not isinstance(card, Mapping):
            errors.append(f"{where}.rates[{i}]: must be a mapping")
            continue
        tier, above, rates = _parse_card(card, f"{where}.rates[{i}]", errors)
        if (tier, above) in declared:
            errors.append(f"{where}.rates[{i}]: duplicate card for tier {tier} above {above}")
        declared[(tier, above)] = rates
    tiers = _resolved_tiers(declared, provider, model, where, errors)
    if not tiers:
        return None
    return PriceVersion(
        version=str(raw.get("version", "")),
        effective_from_ns=start,
        effective_to_ns=end,
        source=str(raw.get("source", "")),
        recorded=str(raw.get("recorded", "")),
        tiers=tiers,
    )


def sort_versions(versions: Iterable[PriceVersion]) -> tuple[PriceVersion, ...]:
    """Versions oldest first (an open start sorts first)."""
    return tuple(sorted(versions, key=lambda v: -(2**63) if v.effective_from_ns is None else v.effective_from_ns))


def overlap(ordered: Sequence[PriceVersion]) -> str:
    """A message naming two versions in force at the same time, or ``""``."""
    for older, newer in zip(ordered, ordered[1:], strict=False):
        if (
            older.effective_to_ns is None
            or newer.effective_from_ns is None
            or older.effective_to_ns > newer.effective_from_ns
        ):
            return f"versions {older.version!r} and {newer.version!r} overlap"
    return ""


def merge_entries(first: Entry, second: Entry) -> Entry:
    """One entry from two documents' entries for the same model (a curated history + an import).

    Versions are united (``second`` wins on equal version ids). A version open at both ends (an
    imported current price of unknown start) starts when the last closed version ends. Metadata comes
    from the entry holding an open-ended version. The result may still overlap: callers check.
    """
    by_id = {v.version: v for v in first.versions}
    by_id.update({v.version: v for v in second.versions})
    closed_ends = [v.effective_to_ns for v in by_id.values() if v.effective_to_ns is not None]
    last_end = max(closed_ends, default=None)
    versions = [
        replace(v, effective_from_ns=last_end)
        if v.effective_from_ns is None and v.effective_to_ns is None and last_end is not None
        else v
        for v in by_id.values()
    ]
    current = second if any(v.effective_to_ns is None for v in second.versions) else first
    aliases = tuple(dict.fromkeys(first.aliases + second.aliases))
    return replace(current, versions=sort_versions(versions), aliases=aliases)


def parse_entry(provider: str, model: str, raw: Mapping[str, Any], errors: list[str]) -> Entry | None:
    """One catalog entry from its data-file form; problems go to ``errors`` (prefixed by the key)."""
    where = f"{provider}/{model}"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: an entry must be a mapping")
        return None
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        errors.append(f"{where}: unknown keys {sorted(unknown)}")
    raw_versions = raw.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        errors.append(f"{where}: needs a non-empty list of versions")
        return None
    before = len(errors)
    versions = [
        parse_version(v, provider, model, f"{where}.versions[{i}]", errors) for i, v in enumerate(raw_versions)
    ]
    if len(errors) > before:
        return None
    ordered = sort_versions(v for v in versions if v is not None)
    problem = overlap(ordered)
    if problem:
        errors.append(f"{where}: {problem}")
        return None
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        errors.append(f"{where}.aliases: must be a list of strings")
        aliases = []
    return Entry(
        provider=provider,
        model=model,
        mode=str(raw.get("mode") or "chat"),
        versions=tuple(ordered),
        aliases=tuple(aliases),
        deprecation_date=None if raw.get("deprecation_date") is None else str(raw["deprecation_date"]),
    )


def parse_document(doc: Mapping[str, Any], where: str, errors: list[str]) -> list[Entry]:
    """Every entry of one data file: ``{"schema_version": 1, "provider": P, "models": {name: entry}}``."""
    if not isinstance(doc, Mapping):
        errors.append(f"{where}: the document must be a mapping")
        return []
    if doc.get("schema_version") != SCHEMA_VERSION:
        errors.append(f"{where}: schema_version must be {SCHEMA_VERSION}")
    provider = doc.get("provider")
    models = doc.get("models")
    if not isinstance(provider, str) or not provider:
        errors.append(f"{where}: missing provider")
        return []
    if not isinstance(models, Mapping):
        errors.append(f"{where}: models must be a mapping of model name to entry")
        return []
    entries = []
    for model, raw in models.items():
        entry = parse_entry(provider, str(model), raw, errors)
        if entry is not None:
            entries.append(entry)
    return entries
