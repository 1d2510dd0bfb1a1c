"""Price each LLM span from its usage and the catalog entry in force at the span's start time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from llm_cost_tracker.pricing._quote import (
    CACHE_WRITE_1H_ATTRIBUTES,
    INPUT_AUDIO_ATTRIBUTES,
    INPUT_IMAGE_ATTRIBUTES,
    OUTPUT_AUDIO_ATTRIBUTES,
    TIER_ATTRIBUTES,
)
from llm_cost_tracker.types import NO_USAGE, PRICED, UNPRICED, SpanRecord, TokenUsage

__all__ = ["NO_USAGE", "PRICED", "PRICING_ATTRIBUTES", "UNPRICED", "Catalog", "Price", "Quote"]
PRICING_ATTRIBUTES = frozenset(TIER_ATTRIBUTES + CACHE_WRITE_1H_ATTRIBUTES + INPUT_AUDIO_ATTRIBUTES
                               + OUTPUT_AUDIO_ATTRIBUTES + INPUT_IMAGE_ATTRIBUTES)
"""Every span attribute ``PriceCatalog.quote`` reads (service tier, 1-hour cache writes, audio and image
tokens). A span with none of them is quoted without its attributes: the same cost, without ~2 us of
lookups per quote (tests/transforms/test_price.py checks that quote reads no other key)."""
SEEN_UNPRICED_LIMIT = 10_000
"""Distinct unresolved (provider, model) pairs remembered; past it new ones are not reported (bounded memory)."""


class Quote(Protocol):
    pricing_model: str
    price_version: str
    cost_pusd: int


class Catalog(Protocol):
    """What pricing needs of ``llm_cost_tracker.pricing.PriceCatalog``."""

    def quote(self, *, provider: str, model: str, at_ns: int, usage: TokenUsage,
              attributes: dict[str, str] | None, tenant: str = "") -> Quote | None: ...


class Price:
    """Transform: sets ``cost_pusd``, ``pricing_model``, ``price_version`` and ``pricing_status``.

    A model the catalog cannot resolve leaves ``cost_pusd`` None and ``pricing_status`` 'unpriced', and a
    span that reports no token usage at all (a stream without ``include_usage``) is 'no_usage' with
    ``cost_pusd`` None: never a silent zero. ``on_unpriced`` is told each distinct unresolved (provider,
    model) once.

    Args:
        catalog: returns the catalog currently in force (so a reload swaps it atomically).
        on_unpriced: callback for the first sighting of an unresolved model.
    """

    __slots__ = ("_catalog", "_on_unpriced", "_seen_unpriced")

    def __init__(self, catalog: Callable[[], Catalog],
                 on_unpriced: Callable[[str, str], None] | None = None) -> None:
        self._catalog = catalog
        self._on_unpriced = on_unpriced
        self._seen_unpriced: set[tuple[str, str]] = set()

    def __call__(self, record: SpanRecord) -> SpanRecord:
        model = record.response_model or record.request_model
        quote = None
        catalog = self._catalog()
        attributes = None if PRICING_ATTRIBUTES.isdisjoint(record.attributes) else record.attributes
        for name in (record.response_model, record.request_model):
            if name:
                quote = catalog.quote(provider=record.provider, model=name, at_ns=record.start_time_ns,
                                      usage=record.usage, attributes=attributes, tenant=record.tenant)
                if quote is not None:
                    break
        if quote is None:
            record.cost_pusd = None
            record.cache_savings_pusd = None
            record.pricing_status = UNPRICED
            key = (record.provider[:512], model[:512])  # names are client input: bound what is remembered
            if key not in self._seen_unpriced and len(self._seen_unpriced) < SEEN_UNPRICED_LIMIT:
                self._seen_unpriced.add(key)
                if self._on_unpriced is not None:
                    self._on_unpriced(*key)
            return record
        if not quote.cost_pusd and not (record.usage.input_tokens or record.usage.output_tokens):
            # a known model and no usage (a per-request fee alone would have cost something): not $0
            record.cost_pusd = None
            record.cache_savings_pusd = None
            record.pricing_model = quote.pricing_model
            record.price_version = quote.price_version
            record.pricing_status = NO_USAGE
            return record
        record.cost_pusd = quote.cost_pusd
        record.cache_savings_pusd = self._cache_savings(catalog, record, name, quote.cost_pusd, attributes)
        record.pricing_model = quote.pricing_model
        record.price_version = quote.price_version
        record.pricing_status = PRICED
        return record

    @staticmethod
    def _cache_savings(catalog: Catalog, record: SpanRecord, model: str, cost_pusd: int,
                       attributes: dict[str, str] | None) -> int:
        """What the span would have cost with its cache reads billed at the input rate, minus its cost."""
        if not record.usage.cache_read_tokens:
            return 0
        u = record.usage
        uncached = TokenUsage(u.input_tokens, u.output_tokens, 0, u.cache_write_tokens, u.reasoning_tokens)
        quote = catalog.quote(provider=record.provider, model=model, at_ns=record.start_time_ns, usage=uncached,
                              attributes=attributes, tenant=record.tenant)
        return 0 if quote is None else quote.cost_pusd - cost_pusd
