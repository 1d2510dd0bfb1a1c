"""Price each LLM span from its usage and the catalog entry in force at the span's start time.

The status a span leaves with (docs/pricing.md, "Pricing status"):

- ``priced``: every dimension of its usage had a price;
- ``partial``: some dimension had none (an image-output price, a per-second price...): ``cost_pusd``
  covers the rest and the span attribute ``llm_cost_tracker.pricing.missing`` names what is missing,
  so it is never counted as fully priced (the zero rule);
- ``reported``: the catalog has no price for the model and ``[pricing] reported_cost_fallback`` is on:
  the cost is the one the producer reported (``gen_ai.usage.cost`` ...);
- ``unpriced``: no price and no usable reported cost: ``cost_pusd`` stays None, never a silent zero;
- ``no_usage``: a known model and a span that reports no usage at all (a stream without
  ``include_usage``): ``cost_pusd`` None, not $0.

A reported cost of exactly 0 is unknown, not free (OpenLIT reports 0 for every model it has no price
for): it is cleared to None before anything uses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from llm_cost_tracker.pricing import TIER_ATTRIBUTES, USAGE_ATTRIBUTES
from llm_cost_tracker.protocols import Catalog, Quote
from llm_cost_tracker.types import NO_USAGE, PRICED, UNPRICED, SpanRecord

__all__ = ["MISSING_ATTRIBUTE", "NO_USAGE", "PARTIAL", "PRICED", "PRICING_ATTRIBUTES", "REPORTED", "UNPRICED",
           "Catalog", "Price", "Quote"]

PARTIAL = "partial"
"""Some dimension of the usage has no price: ``cost_pusd`` covers the rest (the zero rule)."""
REPORTED = "reported"
"""No catalog price; ``cost_pusd`` is the producer's reported cost (``[pricing] reported_cost_fallback``)."""
MISSING_ATTRIBUTE = "llm_cost_tracker.pricing.missing"
"""Span attribute naming the dimensions a 'partial' span used without a price, comma-separated."""
PRICING_ATTRIBUTES = frozenset(TIER_ATTRIBUTES + USAGE_ATTRIBUTES)
"""Every span attribute ``PriceCatalog.quote`` reads (service tier, 1-hour cache writes, audio and image
tokens, seconds, characters, images, searches). A span with none of them is quoted without its
attributes: the same cost, without ~2 us of lookups per quote (tests/transforms/test_price.py checks that
quote reads no other key)."""
SEEN_UNPRICED_LIMIT = 10_000
"""Distinct unresolved (provider, model) pairs remembered; past it new ones are not reported (bounded memory)."""


class Price:
    """Transform: sets ``cost_pusd``, ``pricing_model``, ``price_version`` and ``pricing_status``.

    A model the catalog cannot resolve leaves ``cost_pusd`` None and ``pricing_status`` 'unpriced'
    (or takes the producer's reported cost as 'reported' when ``reported_cost_fallback``): never a silent
    zero. ``on_unpriced`` is told each distinct unresolved (provider, model) once.

    Args:
        catalog: returns the catalog currently in force (so a reload swaps it atomically).
        on_unpriced: callback for the first sighting of an unresolved model.
        reported_cost_fallback: price an unresolved model from the cost its producer reported.
    """

    __slots__ = ("_catalog", "_on_unpriced", "_seen_unpriced", "reported_cost_fallback")

    def __init__(self, catalog: Callable[[], Catalog],
                 on_unpriced: Callable[[str, str], None] | None = None,
                 reported_cost_fallback: bool = False) -> None:
        self._catalog = catalog
        self._on_unpriced = on_unpriced
        self._seen_unpriced: set[tuple[str, str]] = set()
        self.reported_cost_fallback = reported_cost_fallback

    def __call__(self, record: SpanRecord) -> SpanRecord:
        if record.reported_cost_pusd == 0:
            record.reported_cost_pusd = None  # a producer's 0 means "I had no price", not "free"
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
            self._unpriced(record, model)
            return record
        if not quote.cost_pusd and not quote.missing and not (record.usage.input_tokens or record.usage.output_tokens):
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
        if quote.missing:
            record.pricing_status = PARTIAL
            record.attributes[MISSING_ATTRIBUTE] = ",".join(quote.missing)
        else:
            record.pricing_status = PRICED
        return record

    def _unpriced(self, record: SpanRecord, model: str) -> None:
        record.cache_savings_pusd = None
        if self.reported_cost_fallback and record.reported_cost_pusd is not None:
            record.cost_pusd = record.reported_cost_pusd
            record.pricing_status = REPORTED
        else:
            record.cost_pusd = None
            record.pricing_status = UNPRICED
        key = (record.provider[:512], model[:512])  # names are client input: bound what is remembered
        if key not in self._seen_unpriced and len(self._seen_unpriced) < SEEN_UNPRICED_LIMIT:
            self._seen_unpriced.add(key)
            if self._on_unpriced is not None:
                self._on_unpriced(*key)

    @staticmethod
    def _cache_savings(catalog: Catalog, record: SpanRecord, model: str, cost_pusd: int,
                       attributes: dict[str, str] | None) -> int:
        """What the span would have cost with its cache reads billed at the input rate, minus its cost."""
        if not record.usage.cache_read_tokens:
            return 0
        uncached = dataclasses.replace(record.usage, cache_read_tokens=0)
        quote = catalog.quote(provider=record.provider, model=model, at_ns=record.start_time_ns, usage=uncached,
                              attributes=attributes, tenant=record.tenant)
        return 0 if quote is None else quote.cost_pusd - cost_pusd
