"""Vectorized pricing: numpy int64 arrays in, int64 pico-USD costs out, the same numbers as ``quote``.

A :class:`BatchTable` compiles a catalog once into flat arrays: one *slot* per (entry, version) with
its rates per context band for every service tier. Rows are matched to entries through the
catalog's cached resolution (one dict lookup per distinct name), to slots with one ``searchsorted``
over ``(entry, start second)`` keys, and then priced with a handful of whole-array operations. Rows
whose femto-USD sum could overflow int64 are re-priced exactly with Python integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llm_cost_tracker.pricing._model import SERVICE_TIERS
from llm_cost_tracker.pricing._money import FEMTO_PER_PICO
from llm_cost_tracker.types import TokenUsage

if TYPE_CHECKING:
    from llm_cost_tracker.pricing._catalog import PriceCatalog

_RATES = ("input", "output", "cache_read", "cache_write", "reasoning", "per_request")
_NS_PER_S = 1_000_000_000
_SHIFT = 40  # key = entry << 40 | start second (seconds fit in 40 bits until year 36812)
_SAFE_FEMTO = 2**62


class BatchTable:
    """A catalog compiled to arrays for :meth:`PriceCatalog.quote_batch`."""

    def __init__(self, catalog: PriceCatalog) -> None:
        """Compile every entry's versions, tiers and context bands."""
        self.catalog = catalog
        self.keys = list(catalog.entries)
        self.entry_index = {key: i for i, key in enumerate(self.keys)}
        slot_keys: list[int] = []
        slot_entry: list[int] = []
        slot_end: list[int] = []
        self.slot_versions = []
        for i, key in enumerate(self.keys):
            for version in catalog.entries[key].versions:
                start = version.effective_from_ns
                start_s = 0 if start is None else max(start // _NS_PER_S, 0)
                slot_keys.append((i << _SHIFT) | start_s)
                slot_entry.append(i)
                slot_end.append(2**63 - 1 if version.effective_to_ns is None else version.effective_to_ns)
                self.slot_versions.append(version)
        order = np.argsort(np.array(slot_keys, dtype=np.int64), kind="stable")
        self.slot_keys = np.array(slot_keys, dtype=np.int64)[order]
        self.slot_entry = np.array(slot_entry, dtype=np.int64)[order]
        self.slot_end = np.array(slot_end, dtype=np.int64)[order]
        self.slot_versions = [self.slot_versions[j] for j in order]
        self.bands = max(len(bands) for v in self.slot_versions for bands in v.tiers.values())
        self._tier_tables: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _tier_table(self, tier: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(thresholds[slot, band], rates[slot, band, dim], max_rate[slot])`` for one tier."""
        if tier not in self._tier_tables:
            n = len(self.slot_versions)
            thresholds = np.full((n, self.bands), np.iinfo(np.int64).max, dtype=np.int64)
            rates = np.zeros((n, self.bands, len(_RATES)), dtype=np.int64)
            for s, version in enumerate(self.slot_versions):
                bands = version.tiers.get(tier) or version.tiers["standard"]
                for b, card in enumerate(reversed(bands)):  # lowest band first
                    thresholds[s, b] = card.above_input_tokens if b else -1
                    rates[s, b] = [card.rate(d) for d in _RATES]
            max_rate = rates[:, :, :5].max(axis=(1, 2))
            self._tier_tables[tier] = (thresholds, rates, max_rate)
        return self._tier_tables[tier]

    def entries_for(self, providers: Sequence[str], models: Sequence[str], tenant: str) -> np.ndarray:
        """The entry index of every row (-1 where unresolved), one cached lookup per distinct pair."""
        memo: dict[tuple[str, str], int] = {}
        catalog, index = self.catalog, self.entry_index

        def lookup(pair: tuple[str, str]) -> int:
            found = memo.get(pair)
            if found is None:
                resolution = catalog.resolve(pair[0], pair[1], tenant)
                if resolution is None:
                    found = -1
                else:  # a discounted entry is encoded as -2 - index and priced exactly in Python
                    found = index[resolution.entry.key]
                    found = -2 - found if resolution.discount else found
                memo[pair] = found
            return found

        if isinstance(providers, str):
            return np.fromiter((lookup((providers, m)) for m in models), dtype=np.int64, count=len(models))
        return np.fromiter(map(lookup, zip(providers, models, strict=True)), dtype=np.int64, count=len(models))

    def quote(
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
        """See :meth:`PriceCatalog.quote_batch`."""
        if service_tier not in SERVICE_TIERS:
            service_tier = "standard"
        coded = self.entries_for(providers, models, tenant)
        discounted = np.flatnonzero(coded <= -2)
        entry = np.where(coded <= -2, -2 - coded, coded)
        n = len(entry)
        at = np.broadcast_to(np.asarray(at_ns, dtype=np.int64), (n,))
        inp = np.asarray(input_tokens, dtype=np.int64)
        out = np.asarray(output_tokens, dtype=np.int64)
        cr = np.asarray(cache_read_tokens, dtype=np.int64)
        cw = np.asarray(cache_write_tokens, dtype=np.int64)
        reas = np.minimum(np.asarray(reasoning_tokens, dtype=np.int64), out)
        # version slot: last slot of the entry starting at or before the row's second
        key = (np.maximum(entry, 0) << _SHIFT) | (np.maximum(at, 0) // _NS_PER_S)
        slot = np.searchsorted(self.slot_keys, key, side="right") - 1
        slot = np.maximum(slot, 0)
        priced = (entry >= 0) & (self.slot_entry[slot] == entry) & (at < self.slot_end[slot])
        thresholds, rates, max_rate = self._tier_table(service_tier)
        band = np.zeros(n, dtype=np.int64)
        for b in range(1, self.bands):
            band += inp > thresholds[slot, b]
        r = rates[slot, band]  # (n, dims)
        uncached = np.maximum(inp - cr - cw, 0)
        femto = (
            uncached * r[:, 0]
            + (out - reas) * r[:, 1]
            + cr * r[:, 2]
            + cw * r[:, 3]
            + reas * r[:, 4]
            + r[:, 5]
        )
        cost = _round_half_even(femto)
        # rows whose femto sum could exceed int64: recompute with Python integers
        bound = (inp.astype(np.float64) + out + cr + cw) * max_rate[slot].astype(np.float64)
        risky = np.flatnonzero(priced & (bound >= _SAFE_FEMTO))
        for i in risky:
            cost[i] = self._exact(int(slot[i]), service_tier, int(inp[i]), int(out[i]), int(cr[i]), int(cw[i]), int(reas[i]))
        for i in discounted:
            provider = providers if isinstance(providers, str) else providers[i]
            usage = TokenUsage(int(inp[i]), int(out[i]), int(cr[i]), int(cw[i]), int(reas[i]))
            attributes = {"llm_cost_tracker.service_tier": service_tier}
            q = self.catalog.quote(provider, models[i], int(at[i]), usage, attributes, tenant)
            cost[i] = 0 if q is None else q.cost_pusd
        cost[~priced] = 0
        return cost, priced, np.where(priced, entry, -1).astype(np.int32)

    def _exact(self, slot: int, tier: str, inp: int, out: int, cr: int, cw: int, reas: int) -> int:
        from llm_cost_tracker.pricing._quote import femto_amounts, total_pico

        card, _ = self.slot_versions[slot].card(tier, inp)
        amounts = femto_amounts(card, TokenUsage(inp, out, cr, cw, reas))
        return total_pico(amounts, None)[0]


def _round_half_even(femto: np.ndarray) -> np.ndarray:
    quot, rem = np.divmod(femto, FEMTO_PER_PICO)
    up = (rem > FEMTO_PER_PICO // 2) | ((rem == FEMTO_PER_PICO // 2) & (quot % 2 == 1))
    return quot + up
