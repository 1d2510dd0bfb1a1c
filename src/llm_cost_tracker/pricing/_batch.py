"""Vectorized pricing: numpy int64 arrays in, int64 pico-USD costs out, the same numbers as ``quote``.

A :class:`BatchTable` compiles a catalog once into flat arrays: one *slot* per (entry, version) with
its rates per context band for every service tier. Rows are matched to entries through the
catalog's cached resolution (one dict lookup per distinct name), to slots with one ``searchsorted``
over ``(entry, start second)`` keys, and then priced with a handful of whole-array operations. Rows
whose femto-USD sum could overflow int64 are re-priced exactly with Python integers. The zero rule holds
here too: a row that uses a dimension its card has no price for is not priced (``priced`` False), and a
row of an image-generation entry has its output re-priced as image tokens, exactly, in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from llm_cost_tracker.pricing._model import SERVICE_TIERS
from llm_cost_tracker.pricing._money import FEMTO_PER_PICO
from llm_cost_tracker.pricing._quote import IMAGE_EXTRAS, IMAGE_OUTPUT_MODES
from llm_cost_tracker.types import TokenUsage

if TYPE_CHECKING:
    from llm_cost_tracker.pricing._catalog import PriceCatalog

_RATES = ("input", "output", "cache_read", "cache_write", "reasoning", "per_request")
_NS_PER_S = 1_000_000_000
_SHIFT = 40  # key = entry << 40 | start second (seconds fit in 40 bits until year 36812)
_SAFE_FEMTO = 2**62
_MIN = -(2**63)
_MAX = 2**63 - 1


class RowQuotes(NamedTuple):
    """Array-out prices of many rows (:meth:`PriceCatalog.quote_rows`).

    Row ``i`` is priced when ``priced[i]``: it costs ``cost[i]`` pico-USD, at the version in slot
    ``slot[i]``, whose entry key and version name are ``models[slot[i]]`` and ``versions[slot[i]]``. A row
    that is not priced (unresolved, no version in force, a used dimension without a price) has cost 0
    and slot -1: the caller decides what it is, never a $0 "priced".
    """

    cost: np.ndarray
    priced: np.ndarray
    slot: np.ndarray
    models: Sequence[str]
    versions: Sequence[str]


class BatchTable:
    """A catalog compiled to arrays for :meth:`PriceCatalog.quote_batch`."""

    def __init__(self, catalog: PriceCatalog) -> None:
        """Compile every entry's versions, tiers and context bands."""
        self.catalog = catalog
        entries = list(catalog.entries.values())
        for tenant_entries in catalog.overrides.tenant_entries.values():
            entries.extend(tenant_entries)  # a tenant's own prices: entries of their own, under the same keys
        self.keys = [entry.key for entry in entries]
        self.entry_index = {id(entry): i for i, entry in enumerate(entries)}
        """Entry object -> index (``id``: a tenant's entry shares its key with the list-price entry)."""
        rows = []  # (sort key, entry, start ns, end ns, version)
        for i, entry in enumerate(entries):
            for version in entry.versions:
                start = version.effective_from_ns
                start_s = 0 if start is None else max(start // _NS_PER_S, 0)
                rows.append((
                    (i << _SHIFT) | start_s,
                    i,
                    _MIN if start is None else start,
                    _MAX if version.effective_to_ns is None else version.effective_to_ns,
                    version,
                ))
        rows.sort(key=lambda row: row[0])
        self.slot_keys = np.array([r[0] for r in rows], dtype=np.int64)
        self.slot_entry = np.array([r[1] for r in rows], dtype=np.int64)
        self.slot_start = np.array([r[2] for r in rows], dtype=np.int64)
        self.slot_end = np.array([r[3] for r in rows], dtype=np.int64)
        self.slot_versions = [r[4] for r in rows]
        self.slot_models = [self.keys[r[1]] for r in rows]
        """Each slot's entry key (a quote's ``pricing_model``)."""
        self.slot_version_names = [r[4].version for r in rows]
        """Each slot's version name (a quote's ``price_version``)."""
        counts = np.bincount(self.slot_entry, minlength=len(self.keys))
        self.entry_first_slot = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.entry_multi = counts > 1
        self.slot_image = np.array([entries[r[1]].mode in IMAGE_OUTPUT_MODES for r in rows], dtype=bool)
        self.bands = max(len(bands) for v in self.slot_versions for bands in v.tiers.values())
        self._tier_tables: dict[str, _TierTable] = {}

    def tier_table(self, tier: str) -> _TierTable:
        """Band thresholds per slot and flat rate columns indexed by ``slot * bands + band``."""
        if tier not in self._tier_tables:
            n, nb = len(self.slot_versions), self.bands
            thresholds = np.full((nb, n), _MAX, dtype=np.int64)
            rates = np.zeros((len(_RATES), n * nb), dtype=np.int64)
            missing = np.zeros(n * nb, dtype=np.int64)
            for s, version in enumerate(self.slot_versions):
                bands = version.tiers.get(tier) or version.tiers["standard"]
                ordered = list(reversed(bands))  # lowest band first
                for b in range(nb):
                    card = ordered[min(b, len(ordered) - 1)]
                    if 0 < b < len(ordered):
                        thresholds[b, s] = card.above_input_tokens
                    rates[:, s * nb + b] = [card.rate(d) for d in _RATES]
                    missing[s * nb + b] = sum(1 << i for i, d in enumerate(_RATES[:5]) if d in card.missing)
            self._tier_tables[tier] = _TierTable(
                thresholds=[np.ascontiguousarray(thresholds[b]) for b in range(1, nb)
                            if (thresholds[b] != _MAX).any()],
                rates=[np.ascontiguousarray(rates[d]) for d in range(len(_RATES))],
                has_fee=bool(rates[5].any()),
                missing=missing if missing.any() else None,
                max_rate=int(rates[:5].max()) if rates.size else 0,
            )
        return self._tier_tables[tier]

    def entries_for(self, providers: Sequence[str] | str, models: Sequence[str], tenant: str) -> np.ndarray:
        """The entry index of every row (-1 unresolved, ``-2 - i`` discounted), one lookup per distinct pair."""
        memo: dict[tuple[str, str], int] = {}

        def lookup(pair: tuple[str, str]) -> int:
            found = memo.get(pair)
            if found is None:
                found = memo[pair] = self.code_of(pair[0], pair[1], tenant)
            return found

        if isinstance(providers, str):
            return np.fromiter((lookup((providers, m)) for m in models), dtype=np.int64, count=len(models))
        return np.fromiter(map(lookup, zip(providers, models, strict=True)), dtype=np.int64, count=len(models))

    def code_of(self, provider: str, model: str, tenant: str) -> int:
        """One name's entry code: its index, -1 if unresolved, ``-2 - index`` if discounted."""
        resolution = self.catalog.resolve(provider, model, tenant)
        if resolution is None:
            return -1
        found = self.entry_index[id(resolution.entry)]
        return -2 - found if resolution.discount else found

    def quote_slots(
        self,
        names: Sequence[tuple[str, str]] | None,
        coded: np.ndarray,
        at_ns: npt.ArrayLike,
        input_tokens: npt.ArrayLike,
        output_tokens: npt.ArrayLike,
        cache_read_tokens: npt.ArrayLike,
        cache_write_tokens: npt.ArrayLike,
        reasoning_tokens: npt.ArrayLike,
        tenant: str = "",
        service_tier: str = "standard",
        row_names: Callable[[int], tuple[str, str]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Price rows given their entry codes (see ``entries_for``/``code_of``): ``(cost_pusd, priced, entry
        index, version slot)``; ``slot_models``/``slot_version_names`` name a slot; -1 where not priced."""
        if service_tier not in SERVICE_TIERS:
            service_tier = "standard"
        n = len(coded)
        entry = np.where(coded <= -2, -2 - coded, coded)
        valid = entry >= 0
        e = np.maximum(entry, 0)
        at = np.broadcast_to(np.asarray(at_ns, dtype=np.int64), (n,))
        inp = np.asarray(input_tokens, dtype=np.int64)
        out = np.asarray(output_tokens, dtype=np.int64)
        cr = np.asarray(cache_read_tokens, dtype=np.int64)
        cw = np.asarray(cache_write_tokens, dtype=np.int64)
        reas = np.minimum(np.asarray(reasoning_tokens, dtype=np.int64), out)
        # version slot: entries with one version need no search
        slot = self.entry_first_slot.take(e)
        multi = np.flatnonzero(self.entry_multi.take(e))
        if multi.size:
            key = (e[multi] << _SHIFT) | (np.maximum(at[multi], 0) // _NS_PER_S)
            slot[multi] = np.maximum(np.searchsorted(self.slot_keys, key, side="right") - 1, 0)
            valid[multi] &= self.slot_entry.take(slot[multi]) == e[multi]
        priced = valid & (at >= self.slot_start.take(slot)) & (at < self.slot_end.take(slot))
        table = self.tier_table(service_tier)
        k = slot * self.bands
        for thresholds in table.thresholds:
            k += inp > thresholds.take(slot)
        r_in, r_out, r_cr, r_cw, r_reas, r_fee = table.rates
        work = inp - cr
        work -= cw
        np.maximum(work, 0, out=work)
        femto = work * r_in.take(k)
        np.subtract(out, reas, out=work)
        work *= r_out.take(k)
        femto += work
        np.multiply(cr, r_cr.take(k), out=work)
        femto += work
        np.multiply(cw, r_cw.take(k), out=work)
        femto += work
        np.multiply(reas, r_reas.take(k), out=work)
        femto += work
        if table.has_fee:
            femto += r_fee.take(k)
        cost = _round_half_even(femto)
        image = self.slot_image.take(slot)
        if table.missing is not None:  # the zero rule: a used dimension without a price unprices the row
            used = ((inp - cr - cw) > 0).astype(np.int64)
            used |= (((out - reas) > 0) & ~image) << 1  # an image model's output is checked when re-priced below
            used |= (cr > 0) << 2
            used |= (cw > 0) << 3
            used |= (reas > 0) << 4
            priced &= (used & table.missing.take(k)) == 0
        # rows whose femto sum could exceed int64 (beyond ~10^8 tokens): recompute with Python integers
        most = max((int(a.max()) for a in (inp, out, cr, cw) if a.size), default=0)
        if most * table.max_rate * 4 >= _SAFE_FEMTO:
            bound = (inp.astype(np.float64) + out + cr + cw) * float(table.max_rate)
            for i in np.flatnonzero(priced & (bound >= _SAFE_FEMTO / 4)):
                cost[i] = self._exact(int(slot[i]), service_tier, int(inp[i]), int(out[i]), int(cr[i]),
                                      int(cw[i]), int(reas[i]))
        for i in np.flatnonzero(image & (out > 0) & priced):  # image tokens out: exact
            cost[i], ok = self._exact_image(int(slot[i]), service_tier, int(inp[i]), int(out[i]), int(cr[i]),
                                            int(cw[i]), int(reas[i]))
            priced[i] = ok
        for i in np.flatnonzero((coded <= -2) & priced):  # negotiated discounts: exact, in Python
            provider, model = row_names(int(i)) if row_names else ("", "")
            usage = TokenUsage(int(inp[i]), int(out[i]), int(cr[i]), int(cw[i]), int(reas[i]))
            attributes = {"llm_cost_tracker.service_tier": service_tier}
            q = self.catalog.quote(provider, model, int(at[i]), usage, attributes, tenant)
            cost[i] = 0 if q is None else q.cost_pusd
        cost[~priced] = 0
        return cost, priced, np.where(priced, entry, -1).astype(np.int32), np.where(priced, slot, -1)

    def _exact(self, slot: int, tier: str, inp: int, out: int, cr: int, cw: int, reas: int) -> int:
        from llm_cost_tracker.pricing._quote import femto_amounts, total_pico

        card, _ = self.slot_versions[slot].card(tier, inp)
        amounts = femto_amounts(card, TokenUsage(inp, out, cr, cw, reas))
        return total_pico(amounts, None)[0]


    def _exact_image(self, slot: int, tier: str, inp: int, out: int, cr: int, cw: int, reas: int) -> tuple[int, bool]:
        """An image-generation row: output tokens are image tokens; (cost, whether every dimension had a price)."""
        from llm_cost_tracker.pricing._quote import femto_amounts, missing_dimensions, total_pico

        card, _ = self.slot_versions[slot].card(tier, inp)
        amounts = femto_amounts(card, TokenUsage(inp, out, cr, cw, reas), IMAGE_EXTRAS)
        return total_pico(amounts, None)[0], not missing_dimensions(card, amounts)


@dataclass(frozen=True, slots=True)
class _TierTable:
    thresholds: list[np.ndarray]
    rates: list[np.ndarray]
    has_fee: bool
    max_rate: int
    missing: np.ndarray | None
    """Per card, a bit per ``_RATES[:5]`` dimension it has no price for (None when every card has all)."""


def _round_half_even(femto: np.ndarray) -> np.ndarray:
    """Half-up, then one down where the tie sits on an even quotient (``femto = 2000 j + 500``)."""
    half = FEMTO_PER_PICO // 2
    cost = (femto + half) // FEMTO_PER_PICO
    cost -= (femto - half) % (2 * FEMTO_PER_PICO) == 0
    return cost
