"""Catalog sync: take a newer price list, check it, and record it as a dated layer over the bundled catalog.

``sync()`` reads LiteLLM's model price map or our own data-file format (a file, or an http(s)/file URL),
validates it (the data-file schema), compares it with the catalog in force and writes the entries that
are new or changed to ``<data dir>/prices/catalog-<UTC stamp>.json``. ``PriceCatalog.load(data_dir=...)``
lays every such file, oldest first, over the bundled catalog: a changed price becomes a new version in
force from the sync time, so spans priced earlier keep the price they were priced at (``reprice`` stays
the explicit way to change stored costs). A price that drops to 0 (or loses its price) or moves by more
than a factor is refused unless ``accept_changes``. See docs/pricing.md, "Keeping prices fresh".
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from llm_cost_tracker.pricing._model import (
    DIMENSIONS,
    SCHEMA_VERSION,
    USD_DIMENSIONS,
    CatalogError,
    Entry,
    PriceVersion,
    RateCard,
    parse_document,
    sort_versions,
)
from llm_cost_tracker.pricing._money import femto_to_per_mtok, femto_to_usd_str
from llm_cost_tracker.pricing._settings import DEFAULT_MAX_CHANGE_FACTOR

__all__ = ["SYNC_FOLDER", "Change", "SyncResult", "apply_layers", "diff", "layer_files", "read_layers",
           "read_source", "sync"]

SYNC_FOLDER = "prices"
"""Under the data directory: the synced layers and ``last_sync.json``."""
LAYER_PREFIX = "catalog-"
STATE_FILE = "last_sync.json"
MAX_SOURCE_BYTES = 128 << 20
"""A price list larger than this is refused (LiteLLM's map is about 1.5 MB)."""
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class Change:
    """What a sync would do to one entry: ``new``, ``changed`` or ``refused``, with a line per dimension."""

    key: str
    kind: str
    details: tuple[str, ...] = ()


@dataclass(slots=True)
class SyncResult:
    """The changes found, the layer written (None when nothing changed or refused) and whether refused."""

    changes: list[Change] = field(default_factory=list)
    layer: Path | None = None
    refused: bool = False
    entries: int = 0


def read_source(source: str, timeout: float = 60.0) -> bytes:
    """The bytes of a price list: an http(s):// or file:// URL, or a path."""
    if source.startswith(("http://", "https://", "file://")):
        with urllib.request.urlopen(source, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            data: bytes = response.read(MAX_SOURCE_BYTES + 1)
    else:
        with open(source, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise CatalogError([f"{source}: larger than {MAX_SOURCE_BYTES >> 20} MiB"])
    return data


def _documents(data: bytes, source: str, recorded: str, version: str) -> list[dict[str, Any]]:
    """Our data documents from a price list in LiteLLM's format or ours (one document, or a list of them)."""
    if data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    try:
        doc = json.loads(data)
    except ValueError:
        try:
            import yaml

            doc = yaml.safe_load(data)
        except Exception as exc:  # noqa: BLE001 - yaml's errors are not ValueErrors
            raise CatalogError([f"{source}: neither JSON nor YAML: {exc}"]) from exc
    if isinstance(doc, Mapping) and "documents" in doc and "schema_version" in doc:
        doc = doc["documents"]  # a layer written by an earlier sync
    if isinstance(doc, Mapping) and "schema_version" in doc:
        return [dict(doc)]
    if isinstance(doc, list) and all(isinstance(d, Mapping) and "schema_version" in d for d in doc):
        return [dict(d) for d in doc]
    if isinstance(doc, Mapping) and any(isinstance(v, Mapping) and "litellm_provider" in v for v in doc.values()):
        from llm_cost_tracker.pricing._litellm import convert

        fresh = convert(doc, source=f"sync from {source}", recorded=recorded, version=version)
        return [{"schema_version": SCHEMA_VERSION, "provider": p, "models": m} for p, m in sorted(fresh.items())]
    raise CatalogError([f"{source}: not LiteLLM's model price map nor a catalog data file (schema_version, "
                        "provider, models)"])


def _derived(card: RateCard, dim: str) -> bool:
    return any(f.startswith(dim + "=") and not f.endswith("=0") for f in card.fallbacks)


def _changed_dims(old: RateCard, new: RateCard, factor: Decimal) -> tuple[list[str], bool]:
    """Lines describing each dimension that differs, and whether one of them is refused."""
    lines, refused = [], False
    for dim in DIMENSIONS:
        o, n = old.rate(dim), new.rate(dim)
        o_priced, n_priced = dim not in old.missing, dim not in new.missing
        if o == n and o_priced == n_priced:
            continue
        if _derived(old, dim) and _derived(new, dim):
            continue  # follows another dimension (cache_write=input ...): that one's line says it
        show = femto_to_usd_str if dim in USD_DIMENSIONS else femto_to_per_mtok
        before = show(o) if o_priced else "none"
        after = show(n) if n_priced else "none"
        reason = ""
        if o_priced and o > 0 and (n == 0 or not n_priced):
            reason = "drops to 0"
        elif o > 0 and n > 0 and max(o, n) > factor * min(o, n):
            reason = f"moves by more than {factor}x"
        refused = refused or bool(reason)
        lines.append(f"{dim} {before} -> {after}" + (f" (refused: {reason})" if reason else ""))
    return lines, refused


def diff(current: Mapping[str, Entry], fresh: Iterable[Entry], at_ns: int,
         max_factor: Decimal = DEFAULT_MAX_CHANGE_FACTOR) -> list[Change]:
    """Every entry of ``fresh`` that is new or priced differently from ``current`` at ``at_ns``."""
    changes = []
    for entry in fresh:
        old_entry = current.get(entry.key)
        new = entry.latest
        old = old_entry.version_at(at_ns) if old_entry is not None else None
        if old is None:
            changes.append(Change(entry.key, "new"))
            continue
        if old.tiers == new.tiers:
            continue
        lines: list[str] = []
        refused = False
        for tier, bands in new.tiers.items():
            old_bands = old.tiers.get(tier, old.tiers["standard"])
            for card in bands:
                before, _ = old.card(tier, card.above_input_tokens + 1) if tier in old.tiers else (old_bands[-1], tier)
                changed, bad = _changed_dims(before, card, max_factor)
                band = f" above {card.above_input_tokens}" if card.above_input_tokens else ""
                lines.extend(f"{tier}{band}: {line}" for line in changed)
                refused = refused or bad
        if lines:
            changes.append(Change(entry.key, "refused" if refused else "changed", tuple(lines)))
    return changes


def _parse(documents: Sequence[Mapping[str, Any]], source: str) -> list[Entry]:
    errors: list[str] = []
    entries = []
    for i, doc in enumerate(documents):
        entries.extend(parse_document(doc, f"{source}[{i}]", errors))
    if errors:
        raise CatalogError(errors)
    return entries


def sync(source: str, data_dir: str | Path, current: Mapping[str, Entry], *, accept_changes: bool = False,
         max_factor: Decimal = DEFAULT_MAX_CHANGE_FACTOR, now: datetime | None = None,
         dry_run: bool = False) -> SyncResult:
    """Fetch ``source``, compare it with ``current`` and (unless refused or ``dry_run``) record the new layer.

    Raises:
        CatalogError: the source cannot be read as a price list or fails validation.
        OSError: the source or the data directory cannot be read or written.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    stamp = now.strftime(_STAMP)
    documents = _documents(read_source(source), source, now.date().isoformat(), f"sync-{stamp}")
    fresh = _parse(documents, source)
    at_ns = int(now.timestamp()) * 1_000_000_000
    result = SyncResult(changes=diff(current, fresh, at_ns, max_factor), entries=len(fresh))
    result.refused = any(c.kind == "refused" for c in result.changes) and not accept_changes
    if dry_run or result.refused:
        return result
    folder = Path(data_dir) / SYNC_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    if result.changes:
        wanted = {c.key for c in result.changes}
        kept = []
        for doc in documents:
            models = {name: _layer_entry(raw, stamp, source) for name, raw in doc["models"].items()
                      if f"{doc['provider']}/{name}" in wanted}
            if models:
                kept.append({"schema_version": SCHEMA_VERSION, "provider": doc["provider"], "models": models})
        layer = {"schema_version": SCHEMA_VERSION, "synced_at": now.isoformat().replace("+00:00", "Z"),
                 "source": source, "documents": kept}
        result.layer = folder / f"{LAYER_PREFIX}{stamp}.json"
        _write_atomic(result.layer, json.dumps(layer, indent=1, sort_keys=True))
    _write_atomic(folder / STATE_FILE, json.dumps({"checked_at": now.isoformat().replace("+00:00", "Z"),
                                                   "source": source, "changes": len(result.changes)}))
    return result


def _layer_entry(raw: Mapping[str, Any], stamp: str, source: str) -> dict[str, Any]:
    """The entry as recorded in a layer: its current version only, open-ended (the layer's time dates it)."""
    versions = raw["versions"]
    current = next((v for v in reversed(versions) if not v.get("effective_to")), versions[-1])
    version = {**current, "effective_from": None, "effective_to": None}
    if not str(version.get("version", "")).startswith("sync-"):
        version["version"] = f"sync-{stamp}"
    return {**{k: v for k, v in raw.items() if k != "versions"}, "versions": [version]}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def layer_files(data_dir: str | Path) -> list[Path]:
    """The synced layers under ``data_dir``, oldest first."""
    folder = Path(data_dir) / SYNC_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(LAYER_PREFIX) and p.name.endswith(".json"))


def read_layers(data_dir: str | Path, errors: list[str]) -> tuple[list[tuple[int, list[Entry]]], int | None]:
    """``([(synced_at_ns, entries)], checked_at_ns)``: every layer oldest first, and the last sync check."""
    layers = []
    for path in layer_files(data_dir):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            synced = datetime.fromisoformat(str(doc["synced_at"]).replace("Z", "+00:00"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{path}: unreadable sync layer: {exc}")
            continue
        entries: list[Entry] = []
        for i, sub in enumerate(doc.get("documents") or []):
            entries.extend(parse_document(sub, f"{path.name}[{i}]", errors))
        layers.append((int(synced.timestamp()) * 1_000_000_000, entries))
    checked: int | None = None
    state = Path(data_dir) / SYNC_FOLDER / STATE_FILE
    if state.is_file():
        try:
            at = datetime.fromisoformat(json.loads(state.read_text())["checked_at"].replace("Z", "+00:00"))
            checked = int(at.timestamp()) * 1_000_000_000
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{state}: unreadable: {exc}")
    if layers:
        checked = max(checked or 0, layers[-1][0])
    return layers, checked


def _layered(existing: Entry, version: PriceVersion, at_ns: int, fresh: Entry) -> Entry:
    """``existing`` with ``version`` in force from ``at_ns`` (until a later version of ``existing`` starts)."""
    versions = []
    later = [v.effective_from_ns for v in existing.versions
             if v.effective_from_ns is not None and v.effective_from_ns > at_ns]
    for v in existing.versions:
        if v.contains(at_ns):
            v = replace(v, effective_to_ns=at_ns,
                        effective_from_ns=v.effective_from_ns)
            if v.effective_from_ns is not None and v.effective_from_ns >= at_ns:
                continue
        versions.append(v)
    versions.append(replace(version, effective_from_ns=at_ns, effective_to_ns=min(later, default=None)))
    aliases = tuple(dict.fromkeys(existing.aliases + fresh.aliases))
    return replace(existing, mode=fresh.mode, aliases=aliases, versions=sort_versions(versions))


def apply_layers(by_key: dict[str, Entry], layers: Iterable[tuple[int, list[Entry]]]) -> dict[str, Entry]:
    """``by_key`` with every layer laid over it, oldest first (see the module docstring)."""
    for at_ns, entries in layers:
        for entry in entries:
            existing = by_key.get(entry.key)
            new = entry.latest
            if existing is None:
                by_key[entry.key] = entry
                continue
            old = existing.version_at(at_ns)
            if old is not None and old.tiers == new.tiers:
                continue
            by_key[entry.key] = _layered(existing, new, at_ns, entry)
    return by_key
