"""The immutable price catalog: load the data, resolve model names (cached), quote spans.

``PriceCatalog.load()`` reads the bundled data files and an optional user price file once and fails
early on any invalid price. After that the catalog never changes; ``ReloadingCatalog`` swaps whole
catalogs. Name resolution is cached per (provider, model, tenant), so the hot path is a dict lookup
plus a dozen integer multiplications.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_cost_tracker.pricing import _names
from llm_cost_tracker.pricing._model import (
    CatalogError,
    Entry,
    RateCard,
    merge_entries,
    overlap,
    parse_document,
)
from llm_cost_tracker.pricing._overrides import Overrides, load_overrides
from llm_cost_tracker.pricing._quote import (
    IMAGE_EXTRAS,
    IMAGE_OUTPUT_MODES,
    NO_EXTRAS,
    Extras,
    Quote,
    breakdown_pico,
    femto_amounts,
    missing_dimensions,
    service_tier_from,
    total_pico,
    usage_from_attributes,
)
from llm_cost_tracker.types import TokenUsage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from llm_cost_tracker.pricing._batch import BatchTable, RowQuotes

_CACHE_LIMIT = 65_536
_CACHE_CHARS = 1 << 22
"""Characters of client-sent names each name-keyed cache may hold, besides its entry limit: 65,536 keys of
512-character names (4 bytes a character when astral) would otherwise be about 270-400 MiB per cache, over
1 GiB for the three. Real names (tens of characters) reach the entry limit first."""
MAX_NAME_CHARS = 512
"""Longer provider, model or tenant names are never resolved, cached or remembered as unresolved."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """A model name resolved to an entry: how, and the negotiated discount that applies."""

    entry: Entry
    match: str
    discount: tuple[int, int] | None = None


def _read_document(path: Path | str, text: str) -> Any:
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    return json.loads(text)


def bundled_documents() -> list[tuple[str, Any]]:
    """``(name, document)`` for every data file shipped in ``llm_cost_tracker/pricing/data``."""
    docs = []
    folder = resources.files("llm_cost_tracker.pricing") / "data"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith((".json", ".yaml", ".yml")) and not item.name.startswith("_"):
            docs.append((item.name, _read_document(item.name, item.read_text(encoding="utf-8"))))
    return docs


def merged_entries(entries: Iterable[Entry], errors: list[str] | None = None) -> dict[str, Entry]:
    """Entries by key, documents for the same key merged (see ``merge_entries``); overlaps reported."""
    by_key: dict[str, Entry] = {}
    for entry in entries:
        by_key[entry.key] = merge_entries(by_key[entry.key], entry) if entry.key in by_key else entry
    if errors is not None:
        for key, entry in by_key.items():
            problem = overlap(entry.versions)
            if problem:
                errors.append(f"{key}: {problem} (after merging data files)")
    return by_key


def _recorded_ns(entries: Iterable[Entry]) -> int:
    """The newest ``recorded`` date of any version, in ns (0 when none parses)."""
    from llm_cost_tracker.pricing._model import date_to_ns

    newest = max((v.recorded for e in entries for v in e.versions if v.recorded), default="")
    return (date_to_ns(newest[:10], "recorded", []) or 0) if newest else 0


def _signature(entry: Entry) -> tuple[Any, ...]:
    card = entry.latest.standard
    return (card.input, card.output, card.cache_read, card.cache_write, len(entry.latest.tiers["standard"]))


class PriceCatalog:
    """Every known price, indexed by provider and model name. Build with :meth:`load`."""

    __slots__ = ("entries", "overrides", "_index", "_tenant_index", "_aliases", "_cache", "_uniform",
                 "_unresolved", "_batch", "_lock", "_fallbacks", "_cache_chars", "_uniform_chars",
                 "_unresolved_chars", "as_of_ns", "layers", "_names_by_provider")

    def __init__(self, entries: Iterable[Entry], overrides: Overrides | None = None) -> None:
        """Index ``entries`` (user entries in ``overrides`` replace bundled ones with the same key)."""
        self.overrides = overrides or Overrides()
        by_key = merged_entries(entries)
        for entry in self.overrides.entries:
            by_key[entry.key] = entry
        self.entries: Mapping[str, Entry] = dict(sorted(by_key.items()))
        self._index: dict[tuple[str, str], Entry] = {}
        for entry in self.entries.values():
            for name in (entry.model, *entry.aliases):
                self._index.setdefault((entry.provider, name.lower()), entry)
        self._tenant_index: dict[str, dict[tuple[str, str], Entry]] = {}
        for tenant, tenant_entries in self.overrides.tenant_entries.items():
            self._tenant_index[tenant] = {(e.provider, e.model.lower()): e for e in tenant_entries}
        self._aliases = {
            (p, m.lower()): target for (p, m), target in self.overrides.aliases.items()
        }
        self._cache: dict[tuple[str, str, str], Resolution | None] = {}
        self._uniform: dict[tuple[str, str], bool] = {}
        self._unresolved: set[tuple[str, str]] = set()
        self._cache_chars = self._uniform_chars = self._unresolved_chars = 0  # characters of the keys above
        self._batch: BatchTable | None = None
        self._fallbacks: dict[tuple[int, tuple[str, ...]], tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self.as_of_ns = _recorded_ns(self.entries.values())
        """When these prices were last known current: the newest ``recorded`` date, or the last sync check."""
        self.layers: tuple[str, ...] = ()
        """The synced layers laid over the bundled catalog (file names, oldest first)."""
        self._names_by_provider: dict[str, list[str]] | None = None

    @classmethod
    def load(cls, overrides: str | Path | None = None, data_dir: str | Path | None = None) -> PriceCatalog:
        """The bundled catalog, the synced layers of ``data_dir`` and an optional user price file; raises CatalogError.

        Args:
            overrides: path of a user price file (``.toml``, ``.yaml``/``.yml``), or None.
            data_dir: the data directory whose ``prices/`` layers (``pricing sync``) apply, or None.
        """
        from llm_cost_tracker.pricing._sync import apply_layers, layer_files, read_layers

        errors: list[str] = []
        entries: list[Entry] = []
        for name, doc in bundled_documents():
            entries.extend(parse_document(doc, name, errors))
        by_key = merged_entries(entries, errors)
        checked = None
        if data_dir is not None:
            layers, checked = read_layers(data_dir, errors)
            by_key = apply_layers(by_key, layers)
        user = load_overrides(overrides, errors) if overrides is not None else None
        if errors:
            raise CatalogError(errors)
        catalog = cls(by_key.values(), user)
        if checked is not None:
            catalog.as_of_ns = max(catalog.as_of_ns, checked)
            catalog.layers = tuple(p.name for p in layer_files(data_dir)) if data_dir is not None else ()
        return catalog

    # -- resolution --------------------------------------------------------------------------

    def _lookup(self, provider: str, model: str, tenant: str) -> Entry | None:
        if tenant:
            found = self._tenant_index.get(tenant, {}).get((provider, model))
            if found is not None:
                return found
        return self._index.get((provider, model))

    def _family_is_uniform(self, provider: str, family: str) -> bool:
        """Whether every dated snapshot of ``family`` at ``provider`` costs what the family costs."""
        key = (provider, family)
        if key not in self._uniform:
            base = self._index.get(key)
            same = base is not None and all(
                _signature(e) == _signature(base)
                for (p, name), e in self._index.items()
                if p == provider and _names.family_of(name) == family
            )
            chars = len(provider) + len(family)
            if len(self._uniform) >= _CACHE_LIMIT or self._uniform_chars + chars > _CACHE_CHARS:
                self._uniform.clear()  # keyed by client-sent names: bounded like the resolve cache
                self._uniform_chars = 0
            self._uniform[key] = same
            self._uniform_chars += chars
        return self._uniform[key]

    def _find(self, provider: str, model: str, tenant: str) -> tuple[Entry, str] | None:
        candidates = list(dict.fromkeys(_names.model_candidates(provider, model)))
        for prov, name, how in candidates:
            alias = self._aliases.get((prov, name))
            if alias is not None:
                target = self._lookup(alias[0], alias[1].lower(), tenant)
                if target is not None:
                    return target, "alias"
            found = self._lookup(prov, name, tenant)
            if found is not None:
                return found, how
        for prov, name, _how in candidates:
            latest = _names.latest_stripped(name)
            if latest:
                found = self._lookup(prov, latest, tenant)
                if found is not None:
                    return found, "latest"
            family = _names.family_of(name)
            if family and self._family_is_uniform(prov, family):
                found = self._lookup(prov, family, tenant)
                if found is not None:
                    return found, "family"
        return None

    def resolve(self, provider: str, model: str, tenant: str = "") -> Resolution | None:
        """The entry a (provider, model) pair prices with, or None; cached per (provider, model, tenant)."""
        key = (provider, model, tenant)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if len(model) > MAX_NAME_CHARS or len(provider) > MAX_NAME_CHARS or len(tenant) > MAX_NAME_CHARS:
            return None  # no real name is this long; caching it would let a client fill memory with 64 KiB keys
        resolution = self._resolve(provider, model, tenant)
        chars = len(provider) + len(model) + len(tenant)
        if len(self._cache) >= _CACHE_LIMIT or self._cache_chars + chars > _CACHE_CHARS:
            self._cache.clear()
            self._cache_chars = 0
        self._cache[key] = resolution
        self._cache_chars += chars
        return resolution

    def _resolve(self, provider: str, model: str, tenant: str) -> Resolution | None:
        canonical = _names.canonical_provider(provider)
        found = self._find(canonical, model, tenant) if model else None
        if found is None and model:
            for fallback in _names.PROVIDER_FALLBACKS.get(canonical, ()):
                found = self._find(fallback, _names.bare_model(model), tenant)
                if found is not None:
                    found = (found[0], f"fallback:{canonical}->{found[0].provider}")
                    break
        if found is None:
            with self._lock:
                # bounded: every distinct junk model name a client sends must not cost memory forever. No log line
                # here: the service's Price stage says it once per model (a second warning said the same thing)
                chars = len(provider) + len(model)
                if ((provider, model) not in self._unresolved and len(self._unresolved) < _CACHE_LIMIT
                        and self._unresolved_chars + chars <= _CACHE_CHARS):
                    self._unresolved.add((provider, model))
                    self._unresolved_chars += chars
            return None
        entry, how = found
        return Resolution(entry, how, self.overrides.discount_for(entry, tenant))

    def suggest(self, provider: str, model: str, limit: int = 3, all_providers: bool = True) -> list[str]:
        """The catalog names nearest to an unknown ``model`` ("did you mean"), closest first.

        Names of the span's provider are searched first, then every provider's; the match is
        ``difflib``'s ratio on lower-case names (cut-off 0.75), so ``gtp-4o-mini`` finds ``gpt-4o-mini``.
        The service passes ``all_providers=False``: one provider's few hundred names take about a
        millisecond, all 4,500 tens of milliseconds, and model names are client input.
        """
        import difflib

        if not model or len(model) > MAX_NAME_CHARS:
            return []
        if self._names_by_provider is None:
            names: dict[str, list[str]] = {}
            for entry in self.entries.values():
                names.setdefault(entry.provider, []).extend((entry.model, *entry.aliases))
            self._names_by_provider = {p: sorted(set(n)) for p, n in names.items()}
        wanted = model.lower()
        canonical = _names.canonical_provider(provider) if provider else ""
        pools = [self._names_by_provider.get(canonical, [])] if canonical in self._names_by_provider else []
        if all_providers:
            pools.append(sorted({n for names in self._names_by_provider.values() for n in names}))
        for pool in pools:
            lowered = {n.lower(): n for n in pool}
            found = difflib.get_close_matches(wanted, list(lowered), n=limit, cutoff=0.75)
            if found:
                return [lowered[n] for n in found]
        return []

    @property
    def unresolved(self) -> frozenset[tuple[str, str]]:
        """Every (provider, model) pair that could not be priced so far."""
        return frozenset(self._unresolved)

    # -- pricing -----------------------------------------------------------------------------

    def quote(
        self,
        provider: str,
        model: str,
        at_ns: int,
        usage: TokenUsage,
        attributes: Mapping[str, object] | None = None,
        tenant: str = "",
    ) -> Quote | None:
        """The cost of one span, or None when the model (or a price at ``at_ns``) is unknown.

        Args:
            provider: the provider as the dialect sends it (normalised here).
            model: the model name as the span carries it.
            at_ns: the span's start time; the price in force then is applied.
            usage: normalised token counts (cached and reasoning tokens are subsets).
            attributes: span attributes (service tier, 1-hour cache writes, audio/image tokens).
            tenant: the tenant whose negotiated prices apply (``""`` for list prices).
        """
        resolution = self.resolve(provider, model, tenant)
        if resolution is None:
            return None
        entry = resolution.entry
        versions = entry.versions
        version = versions[0] if len(versions) == 1 and versions[0].contains(at_ns) else entry.version_at(at_ns)
        if version is None:
            return None
        tier = service_tier_from(attributes) if attributes else "standard"
        card, used_tier = version.card(tier, usage.input_tokens)
        image_output = entry.mode in IMAGE_OUTPUT_MODES
        if attributes:
            usage = usage_from_attributes(usage, attributes)
            extras = Extras.from_attributes(attributes, image_output)
        else:
            extras = IMAGE_EXTRAS if image_output else NO_EXTRAS
        amounts = femto_amounts(card, usage, extras)
        missing = () if card.missing.isdisjoint(amounts) else missing_dimensions(card, amounts)
        cost, discount = total_pico(amounts, resolution.discount)
        fallbacks = self._used_fallbacks(card, amounts) if card.fallbacks else ()
        if used_tier != tier:
            fallbacks = (*fallbacks, f"tier:{tier}->standard")
        return Quote(
            pricing_model=entry.key,
            price_version=version.version,
            cost_pusd=cost,
            breakdown=breakdown_pico(amounts, discount),
            service_tier=used_tier,
            match=resolution.match,
            fallbacks=fallbacks,
            missing=missing,
        )

    def quote_batch(
        self,
        providers: Sequence[str],
        models: Sequence[str],
        at_ns: npt.ArrayLike,
        input_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        cache_read_tokens: npt.ArrayLike,
        cache_write_tokens: npt.ArrayLike,
        reasoning_tokens: npt.ArrayLike,
        tenant: str = "",
        service_tier: str = "standard",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized :meth:`quote` (same costs): ``(cost_pusd int64, priced bool, entry index int32)``.

        Unpriced rows have cost 0, ``priced`` False and entry index -1; ``entry_keys()[i]`` names
        entry ``i``. One service tier and tenant apply to the whole batch.
        """
        table = self._batch_table()
        coded = table.entries_for(providers, models, tenant)

        def row_names(i: int) -> tuple[str, str]:
            return (providers if isinstance(providers, str) else providers[i]), models[i]

        cost, priced, entry, _ = table.quote_slots(
            None, coded, at_ns, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, reasoning_tokens, tenant, service_tier, row_names,
        )
        return cost, priced, entry

    def quote_batch_encoded(
        self,
        names: Sequence[tuple[str, str]],
        codes: npt.ArrayLike,
        at_ns: npt.ArrayLike,
        input_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        cache_read_tokens: npt.ArrayLike,
        cache_write_tokens: npt.ArrayLike,
        reasoning_tokens: npt.ArrayLike,
        tenant: str = "",
        service_tier: str = "standard",
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`quote_batch` for dictionary-encoded names: row ``i`` is ``names[codes[i]]``.

        Batches of spans carry a few hundred distinct (provider, model) pairs; encoded that way (as
        Arrow/ClickHouse LowCardinality columns are), names are resolved once per distinct pair.
        """
        import numpy as np

        table = self._batch_table()
        lookup = np.array([table.code_of(p, m, tenant) for p, m in names] or [-1], dtype=np.int64)
        code_array = np.asarray(codes, dtype=np.int64)
        coded = lookup.take(code_array)

        def row_names(i: int) -> tuple[str, str]:
            return names[int(code_array[i])]

        cost, priced, entry, _ = table.quote_slots(
            names, coded, at_ns, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, reasoning_tokens, tenant, service_tier, row_names,
        )
        return cost, priced, entry

    def code_of(self, provider: str, model: str, tenant: str = "") -> int:
        """The entry code :meth:`quote_rows` takes for a name: -1 if unresolved (see ``BatchTable.code_of``)."""
        return self._batch_table().code_of(provider, model, tenant)

    def quote_rows(
        self,
        codes: npt.ArrayLike,
        at_ns: npt.ArrayLike,
        input_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        cache_read_tokens: npt.ArrayLike,
        cache_write_tokens: npt.ArrayLike,
        reasoning_tokens: npt.ArrayLike,
        tenant: str,
        row_names: Callable[[int], tuple[str, str]],
    ) -> RowQuotes:
        """Standard-tier prices of rows whose names are already resolved to entry codes (:meth:`code_of`),
        with the version each was priced at: the price stage's columnar path.

        ``row_names(i)`` is the (provider, model) row ``i`` resolved with; it is only asked for rows
        under a negotiated discount (re-priced exactly). Same costs as :meth:`quote` for spans whose
        usage has no detail and whose attributes name no tier or extra unit.
        """
        import numpy as np

        from llm_cost_tracker.pricing._batch import RowQuotes

        table = self._batch_table()
        cost, priced, _, slot = table.quote_slots(
            None, np.asarray(codes, dtype=np.int64), at_ns, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, reasoning_tokens, tenant, "standard", row_names)
        return RowQuotes(cost, priced, slot, table.slot_models, table.slot_version_names)

    def compile_columns(self) -> None:
        """Build what :meth:`quote_rows` prices with now (~0.1 s for the bundled catalog) instead of on the
        first request: a reload does it before swapping the catalog in, so no request waits for it."""
        self._batch_table().tier_table("standard")

    def _batch_table(self) -> BatchTable:
        from llm_cost_tracker.pricing._batch import BatchTable

        table = self._batch
        if table is None:
            with self._lock:
                if self._batch is None:
                    self._batch = BatchTable(self)
                table = self._batch
        return table

    def _used_fallbacks(self, card: RateCard, amounts: Mapping[str, int]) -> tuple[str, ...]:
        """The card's fallback labels for dimensions this span has tokens in (memoized)."""
        key = (id(card), tuple(amounts))
        found = self._fallbacks.get(key)
        if found is None:
            found = tuple(f for f in card.fallbacks if f[: f.index("=")] in amounts)
            if len(self._fallbacks) < _CACHE_LIMIT:
                self._fallbacks[key] = found
        return found

    def entry_keys(self) -> list[str]:
        """Entry keys in the order ``quote_batch`` indexes them (tenants' own entries last, under their keys)."""
        return list(self._batch_table().keys)

    # -- browsing ----------------------------------------------------------------------------

    def providers(self) -> list[str]:
        """Every provider id with at least one entry."""
        return sorted({e.provider for e in self.entries.values()})

    def list(self, provider: str | None = None) -> list[Entry]:
        """Every entry, optionally of one provider (canonical id or dialect spelling)."""
        wanted = _names.canonical_provider(provider) if provider else None
        return [e for e in self.entries.values() if wanted is None or e.provider == wanted]

    def __len__(self) -> int:
        return len(self.entries)
