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
same span: ``tests/transforms/test_price_columns.py`` compares them on generated spans (and
``test_stage_fast_paths.py`` with the attribute columns of wire-scanned requests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter, itemgetter

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

    def catalog(self) -> Catalog:
        """The catalog in force now (what this stage prices with)."""
        return self._catalog()

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]:
        """Prices ``records`` in place (the columnar path where it applies, see the module docstring).

        The usage it reads is already in the records; the attribute ``columns`` only answer "does this span
        carry an attribute that pricing reads?" for every record they describe at once: when no key of the
        request is one, none of those records does (:func:`_plain_dicts`), and 15 set probes per span are saved.
        """
        catalog = self._catalog()
        plain = _plain_dicts(columns)
        resolved: dict[tuple[str, str, str, str], tuple[tuple[int, str], _Rows | None]] = {}
        groups: list[_Rows] = []
        by_tenant: dict[str, _Rows] = {}
        for record in records:
            if record.reported_cost_pusd == 0:
                record.reported_cost_pusd = None  # a producer's 0 means "I had no price", not "free"
            attrs = record.attributes
            if record.usage.detail is not NO_DETAIL or (
                    plain.get(id(attrs)) != len(attrs) and not PRICING_ATTRIBUTES.isdisjoint(attrs)):
                self._one(record, catalog)
                continue
            key = (record.tenant, record.provider, record.response_model, record.request_model)
            found = resolved.get(key)
            if found is None:
                pair = _code(catalog, record)
                rows = None
                if pair[0] != -1:
                    rows = by_tenant.get(record.tenant)
                    if rows is None:
                        rows = by_tenant[record.tenant] = _Rows(record.tenant)
                        groups.append(rows)
                found = resolved[key] = (pair, rows)
            pair, rows = found
            if rows is None:
                self._unpriced(record, pair[1])
                continue
            rows.records.append(record)
            rows.found.append(pair)
        for rows in groups:
            self._columns(catalog, rows)
        return records

    def _columns(self, catalog: Catalog, rows: _Rows) -> None:
        """One tenant's resolved standard-tier rows priced at once; what the arrays cannot settle, one by one.

        The rows with cache reads are quoted a second time in the same call, without them (their savings: rows
        are priced independently, so appending them changes no other row's quote), and each row's outcome is
        decided in arrays (priced or not, no usage), so the loop over the records only stores fields."""
        records, found, tenant = rows.records, rows.found, rows.tenant
        n = len(records)
        usages = list(map(_USAGE, records))
        inp = np.fromiter(map(_INPUT, usages), dtype=np.int64, count=n)
        out = np.fromiter(map(_OUTPUT, usages), dtype=np.int64, count=n)
        cr = np.fromiter(map(_CACHE_READ, usages), dtype=np.int64, count=n)
        cw = np.fromiter(map(_CACHE_WRITE, usages), dtype=np.int64, count=n)
        reasoning = np.fromiter(map(_REASONING, usages), dtype=np.int64, count=n)
        at = np.fromiter(map(_START, records), dtype=np.int64, count=n)
        codes = np.fromiter(map(_FOUND_CODE, found), dtype=np.int64, count=n)
        reads = np.flatnonzero(cr)  # rows n, n + 1, ... are these again, their cache reads billed as input

        def names(i: int) -> tuple[str, str]:
            j = i if i < n else int(reads[i - n])
            return records[j].provider, found[j][1]

        if reads.size:
            def again(a: np.ndarray) -> np.ndarray:
                return np.concatenate((a, a[reads]))

            quotes = catalog.quote_rows(again(codes), again(at), again(inp), again(out),
                                        np.concatenate((cr, np.zeros(reads.size, np.int64))), again(cw),
                                        again(reasoning), tenant, names)
        else:
            quotes = catalog.quote_rows(codes, at, inp, out, cr, cw, reasoning, tenant, names)
        cost, priced = quotes.cost[:n], quotes.priced[:n]
        no_usage = priced & (cost == 0) & (inp == 0) & (out == 0)  # a known model and no usage: not $0
        savings: dict[int, int] = {}
        if reads.size:
            saved = (priced & ~no_usage)[reads]
            for i, full, uncached, ok in zip(reads[saved].tolist(), cost[reads[saved]].tolist(),
                                             quotes.cost[n:][saved].tolist(), quotes.priced[n:][saved].tolist(),
                                             strict=True):
                savings[i] = (uncached - full if ok else
                              self._cache_savings(catalog, records[i], found[i][1], full, None))
        # what each row is: 0 settled one by one, 1 no usage, 2 priced (its savings 0 unless listed above)
        kind = priced.astype(np.int8) + (priced & ~no_usage)
        models, versions = quotes.models, quotes.versions
        for i, (record, what, pusd, slot) in enumerate(zip(records, kind.tolist(), cost.tolist(),
                                                            quotes.slot[:n].tolist(), strict=True)):
            if what == 2:
                record.pricing_model = models[slot]
                record.price_version = versions[slot]
                record.cost_pusd = pusd
                record.pricing_status = PRICED
                record.cache_savings_pusd = savings.get(i, 0)
            elif what == 1:
                record.pricing_model = models[slot]
                record.price_version = versions[slot]
                record.cost_pusd = None
                record.cache_savings_pusd = None
                record.pricing_status = NO_USAGE
            else:
                self._one(record, catalog)  # no version in force, or a used dimension without a price

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
    """One tenant's records on the columnar path, with what each one's names resolved to (the entry code and
    the name that resolved, shared by every record of the same names)."""

    tenant: str
    records: list[SpanRecord] = dataclasses.field(default_factory=list)
    found: list[tuple[int, str]] = dataclasses.field(default_factory=list)


_USAGE = attrgetter("usage")
_INPUT = attrgetter("input_tokens")
_OUTPUT = attrgetter("output_tokens")
_CACHE_READ = attrgetter("cache_read_tokens")
_CACHE_WRITE = attrgetter("cache_write_tokens")
_REASONING = attrgetter("reasoning_tokens")
_START = attrgetter("start_time_ns")
_FOUND_CODE = itemgetter(0)


def _plain_dicts(columns: AttributeColumns | None) -> dict[int, int]:
    """``id(dict) -> keys as decoded`` of the rows of ``columns`` when no key of the request is a pricing
    attribute (empty otherwise, or without columns). A record whose attributes are such a dict, still of that
    size, carries no pricing attribute (docs/performance.md, "Columns from the source to the sink"); the dicts
    are alive as long as the columns, so an id names one of them."""
    if columns is None or not PRICING_ATTRIBUTES.isdisjoint(columns.keys):
        return {}
    return dict(zip(map(id, columns.dicts), columns.sizes, strict=True))


def _code(catalog: Catalog, record: SpanRecord) -> tuple[int, str]:
    """The entry code a record prices with and the name that resolved (the response model first, as
    ``Price.__call__`` tries them); (-1, the name it would show) when neither resolves."""
    for name in (record.response_model, record.request_model):
        if name:
            code = catalog.code_of(record.provider, name, record.tenant)
            if code != -1:
                return code, name
    return -1, record.response_model or record.request_model
