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

Two ways through, one decision. The receivers call :meth:`Price.process` on a request's records: the
common span (standard tier, token usage only) is priced with the others in a few array operations
(``PriceCatalog.quote_rows``, names resolved once per distinct pair), at about a fifth of the per-span
cost. A span with a tier, an extra unit or usage detail, and every row the arrays cannot settle (a
name with no version in force, a used dimension without a price), goes through :meth:`Price.__call__`,
the per-span path, which also prices single spans (re-pricing, tests). Both give the same fields for the
same span: ``tests/transforms/test_price_columns.py`` compares them on generated spans.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from llm_cost_tracker.pricing import TIER_ATTRIBUTES, USAGE_ATTRIBUTES
from llm_cost_tracker.protocols import Catalog, Quote
from llm_cost_tracker.types import NO_DETAIL, NO_USAGE, PRICED, UNPRICED, AttributeColumns, SpanRecord

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
        return self._one(record, self._catalog())

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]:
        """Prices ``records`` in place (the columnar path where it applies, see the module docstring); the
        usage it reads is already in the records, so the attribute ``columns`` are not needed."""
        catalog = self._catalog()
        by_tenant: dict[str, _Rows] = {}
        resolved: dict[tuple[str, str, str, str], tuple[int, str]] = {}
        for record in records:
            if record.reported_cost_pusd == 0:
                record.reported_cost_pusd = None  # a producer's 0 means "I had no price", not "free"
            if record.usage.detail is not NO_DETAIL or not PRICING_ATTRIBUTES.isdisjoint(record.attributes):
                self._one(record, catalog)
                continue
            key = (record.tenant, record.provider, record.response_model, record.request_model)
            found = resolved.get(key)
            if found is None:
                found = resolved[key] = _code(catalog, record)
            code, name = found
            if code == -1:
                self._unpriced(record, name)
                continue
            rows = by_tenant.get(record.tenant)
            if rows is None:
                rows = by_tenant[record.tenant] = _Rows()
            rows.records.append(record)
            rows.codes.append(code)
            rows.names.append(name)
        for tenant, rows in by_tenant.items():
            self._columns(catalog, tenant, rows)
        return records

    def _columns(self, catalog: Catalog, tenant: str, rows: _Rows) -> None:
        """One tenant's resolved standard-tier rows priced at once; what the arrays cannot settle, one by one."""
        records, names = rows.records, rows.names
        n = len(records)
        usage = np.array([(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                           u.reasoning_tokens) for u in (r.usage for r in records)], dtype=np.int64).reshape(n, 5)
        at = np.fromiter((r.start_time_ns for r in records), dtype=np.int64, count=n)
        codes = np.array(rows.codes, dtype=np.int64)
        quotes = catalog.quote_rows(codes, at, usage[:, 0], usage[:, 1], usage[:, 2], usage[:, 3], usage[:, 4],
                                    tenant, lambda i: (records[i].provider, names[i]))
        models, versions = quotes.models, quotes.versions
        cached: list[int] = []
        for i, (record, cost, priced, slot) in enumerate(zip(records, quotes.cost.tolist(), quotes.priced.tolist(),
                                                               quotes.slot.tolist(), strict=True)):
            if not priced:
                self._one(record, catalog)  # no version in force, or a used dimension without a price
                continue
            record.pricing_model = models[slot]
            record.price_version = versions[slot]
            u = record.usage
            if not cost and not (u.input_tokens or u.output_tokens):
                record.cost_pusd = None  # a known model and no usage: not $0
                record.cache_savings_pusd = None
                record.pricing_status = NO_USAGE
                continue
            record.cost_pusd = cost
            record.pricing_status = PRICED
            if u.cache_read_tokens:
                cached.append(i)
            else:
                record.cache_savings_pusd = 0
        if cached:
            self._cache_savings_columns(catalog, tenant, rows, cached, codes, at, usage)

    def _cache_savings_columns(self, catalog: Catalog, tenant: str, rows: _Rows, cached: list[int],
                               codes: np.ndarray, at: np.ndarray, usage: np.ndarray) -> None:
        """:meth:`_cache_savings` for the priced rows that read from a cache, at once."""
        records, names = rows.records, rows.names
        index = np.array(cached, dtype=np.int64)
        u = usage[index]
        uncached = catalog.quote_rows(codes[index], at[index], u[:, 0], u[:, 1], np.zeros(len(index), np.int64),
                                      u[:, 3], u[:, 4], tenant, lambda j: (records[cached[j]].provider,
                                                                           names[cached[j]]))
        for i, cost, priced in zip(cached, uncached.cost.tolist(), uncached.priced.tolist(), strict=True):
            record = records[i]
            assert record.cost_pusd is not None  # priced above
            record.cache_savings_pusd = (cost - record.cost_pusd if priced else
                                         self._cache_savings(catalog, record, names[i], record.cost_pusd, None))

    def _one(self, record: SpanRecord, catalog: Catalog) -> SpanRecord:
        """The per-span path: every kind of span, every status."""
        if record.reported_cost_pusd == 0:
            record.reported_cost_pusd = None  # a producer's 0 means "I had no price", not "free"
        model = record.response_model or record.request_model
        quote = None
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


@dataclasses.dataclass(slots=True)
class _Rows:
    """One tenant's records on the columnar path, with each one's entry code and the name it resolved with."""

    records: list[SpanRecord] = dataclasses.field(default_factory=list)
    codes: list[int] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)


def _code(catalog: Catalog, record: SpanRecord) -> tuple[int, str]:
    """The entry code a record prices with and the name that resolved (the response model first, as
    ``Price.__call__`` tries them); (-1, the name it would show) when neither resolves."""
    for name in (record.response_model, record.request_model):
        if name:
            code = catalog.code_of(record.provider, name, record.tenant)
            if code != -1:
                return code, name
    return -1, record.response_model or record.request_model
