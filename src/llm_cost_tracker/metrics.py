"""Every Prometheus metric of the pipeline, owned by one :class:`Metrics` object per process.

Spend and tokens are summed exactly (integers) in :class:`SpendCollector` and turned into floats
only when scraped, so the hot path pays a dict update per request and label set, not a
prometheus-client call per span.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from llm_cost_tracker.access.cardinality import OTHER, LabelFolder
from llm_cost_tracker.types import DUPLICATE, NO_USAGE, PICO_PER_USD, PRICED, SpanRecord

# *_created series double the exposition and no dashboard of ours reads them
# (prometheus_client leaves this function unannotated)
disable_created_metrics()  # type: ignore[no-untyped-call]

TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
UNPRICED_REASONS = {NO_USAGE: "no_usage"}
"""``pricing_status`` -> ``reason`` label of ``llm_unpriced_spans_total``; any other unpriced span is
``unknown_model`` (the catalog has no price for its model, or it names none), and a 'partial' span (priced
but for a dimension without a price) is ``missing:<dimensions>``."""
PARTIAL = "partial"
MISSING_ATTRIBUTE = "llm_cost_tracker.pricing.missing"
MAX_SERIES = 20_000
"""Label sets per spend family; past it new combinations are counted under (other, other, other)."""
_ALL_OTHER = (OTHER, OTHER, OTHER)


class SpendCollector(Collector):
    """Exact per-(service, provider, model) spend, token and unpriced counters.

    A ``duplicate`` span (another span of the same provider call carries its cost) adds to none of them.
    """

    def __init__(self, folder: LabelFolder | None = None) -> None:
        self.folder = folder or LabelFolder()
        """Caps the service, provider and model label values each tenant can create (the rest fold into
        'other'); the label sets of each family are capped at :data:`MAX_SERIES` too."""
        self._lock = threading.Lock()
        self._cost: dict[tuple[str, str, str], int] = {}
        self._tokens: dict[tuple[str, str, str], list[int]] = {}
        self._unpriced: dict[tuple[str, str, str], int] = {}
        self._disagree: dict[tuple[str, str], int] = {}
        self.reported_tolerance = Decimal("0.01")
        """Relative difference past which a computed and a reported cost disagree (``[pricing]``)."""

    def observe(self, records: Iterable[SpanRecord]) -> None:
        """Add stored records (call once per batch, not per span)."""
        self.observe_records(list(records))

    def observe_records(self, records: list[SpanRecord]) -> None:
        """Add stored records: what :meth:`observe_rows` of their ``SpendRow`` tuples adds, label for label.

        Why not the rows: the writer counts every span it stores here, under the GIL, and building a 13-field
        tuple per span and then unpacking it again cost twice this loop. The records are summed per (tenant,
        service, provider, model, status, priced or not), a few hundred groups per batch, and the groups are
        added to the families after the loop. Each family's entries are created in the order its spans
        first appear, as the per-row loop creates them, so the label folding (which keeps the first values it
        sees per tenant) and the series caps decide exactly as they do for the rows.
        """
        cost: dict[tuple[str, str, str, str], int] = {}
        tokens: dict[tuple[str, str, str, str], list[int]] = {}
        unpriced: dict[tuple[str, str, str, str], int] = {}
        disagree: dict[tuple[str, str, str], int] = {}
        groups: dict[tuple[str, str, str, str, str, bool], list[int]] = {}
        tolerance = self.reported_tolerance
        for r in records:
            status = r.pricing_status
            if status == DUPLICATE:
                continue
            pusd = r.cost_pusd
            key = (r.tenant, r.service_name, r.provider, r.response_model or r.request_model, status, pusd is None)
            sums = groups.get(key)
            if sums is None:  # the group's first span: its entries take their place in each family now
                sums = groups[key] = [0, 0, 0, 0, 0, 0]  # five token counts, then spans (unpriced) or cost
                dims = key[:4]
                if dims not in tokens:
                    tokens[dims] = [0, 0, 0, 0, 0]
                if pusd is None:
                    ukey = (key[0], key[2], key[3], UNPRICED_REASONS.get(status, "unknown_model"))
                    if ukey not in unpriced:
                        unpriced[ukey] = 0
                elif dims not in cost:
                    cost[dims] = 0
            u = r.usage
            sums[0] += u.input_tokens
            sums[1] += u.output_tokens
            sums[2] += u.cache_read_tokens
            sums[3] += u.cache_write_tokens
            sums[4] += u.reasoning_tokens
            if pusd is None:
                sums[5] += 1
            elif status == PRICED:
                sums[5] += pusd
                reported = r.reported_cost_pusd
                if reported is not None and abs(pusd - reported) > tolerance * max(pusd, reported):
                    dkey = (key[0], key[2], key[3])
                    disagree[dkey] = disagree.get(dkey, 0) + 1
            else:
                sums[5] += pusd
                if status == PARTIAL:  # the zero rule: counted as not fully priced, naming what is missing
                    missing = r.attributes.get(MISSING_ATTRIBUTE, "") or "unknown"
                    ukey = (key[0], key[2], key[3], "missing:" + missing)
                    unpriced[ukey] = unpriced.get(ukey, 0) + 1
        self._add_groups(groups.items(), cost, tokens, unpriced)
        self._add(cost, tokens, unpriced, disagree)

    def observe_groups(self, groups: Iterable[tuple[tuple[str, str, str, str, str, bool], list[int]]]) -> None:
        """Add stored spans already summed per (tenant, service, provider, model, status, cost is None), in the
        order of each group's first span (``storage.table.SpanTable.spend_groups``): what :meth:`observe_records`
        adds of those spans, entry for entry, when none is partial or carries a reported cost (those are counted
        span by span)."""
        cost: dict[tuple[str, str, str, str], int] = {}
        tokens: dict[tuple[str, str, str, str], list[int]] = {}
        unpriced: dict[tuple[str, str, str, str], int] = {}
        listed = list(groups)
        for key, _ in listed:  # each family's entries in the order of their first span, as observe_records makes them
            dims = key[:4]
            if dims not in tokens:
                tokens[dims] = [0, 0, 0, 0, 0]
            if key[5]:
                unpriced.setdefault((key[0], key[2], key[3], UNPRICED_REASONS.get(key[4], "unknown_model")), 0)
            elif dims not in cost:
                cost[dims] = 0
        self._add_groups(listed, cost, tokens, unpriced)
        self._add(cost, tokens, unpriced, {})

    @staticmethod
    def _add_groups(groups: Iterable[tuple[tuple[str, str, str, str, str, bool], list[int]]],
                    cost: dict[tuple[str, str, str, str], int], tokens: dict[tuple[str, str, str, str], list[int]],
                    unpriced: dict[tuple[str, str, str, str], int]) -> None:
        """Add each group's sums (five token counts, then its spans when unpriced, else its cost) to the entries."""
        for (tenant, service, provider, model, status, unpriced_group), sums in groups:
            dims = (tenant, service, provider, model)
            counts = tokens[dims]
            for i in range(5):
                counts[i] += sums[i]
            if unpriced_group:
                unpriced[(tenant, provider, model, UNPRICED_REASONS.get(status, "unknown_model"))] += sums[5]
            else:
                cost[dims] += sums[5]

    def observe_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Add records given as ``sinks.identity.SpendRow`` tuples: (tenant, service, provider, model, input,
        output, cache_read, cache_write, reasoning tokens, cost_pusd or None, pricing_status, the missing
        dimension of a partial price or "", reported_cost_pusd or None)."""
        cost: dict[tuple[str, str, str, str], int] = {}
        tokens: dict[tuple[str, str, str, str], list[int]] = {}
        unpriced: dict[tuple[str, str, str, str], int] = {}
        disagree: dict[tuple[str, str, str], int] = {}
        tolerance = self.reported_tolerance
        for tenant, service, provider, model, i, o, cr, cw, rs, pusd, status, missing, reported in rows:
            if status == DUPLICATE:
                continue
            key = (tenant, service, provider, model)
            t = tokens.get(key)
            if t is None:
                t = tokens[key] = [0, 0, 0, 0, 0]
            t[0] += i
            t[1] += o
            t[2] += cr
            t[3] += cw
            t[4] += rs
            if pusd is None:
                ukey = (tenant, provider, model, UNPRICED_REASONS.get(status, "unknown_model"))
                unpriced[ukey] = unpriced.get(ukey, 0) + 1
            else:
                cost[key] = cost.get(key, 0) + pusd
                if status == PARTIAL:  # the zero rule: counted as not fully priced, naming what is missing
                    ukey = (tenant, provider, model, "missing:" + (missing or "unknown"))
                    unpriced[ukey] = unpriced.get(ukey, 0) + 1
                if (reported is not None and status == PRICED
                        and abs(pusd - reported) > tolerance * max(pusd, reported)):
                    dkey = (tenant, provider, model)
                    disagree[dkey] = disagree.get(dkey, 0) + 1
        self._add(cost, tokens, unpriced, disagree)

    def _add(self, cost: dict[tuple[str, str, str, str], int], tokens: dict[tuple[str, str, str, str], list[int]],
             unpriced: dict[tuple[str, str, str, str], int], disagree: dict[tuple[str, str, str], int]) -> None:
        """Add a batch's sums per tenant and dimensions to the families, under their folded labels."""
        fold = self.folder.fold

        def labels(tenant: str, service: str, provider: str, model: str, family: dict[Any, Any]) -> Any:
            label = (fold(tenant, "service", service), fold(tenant, "provider", provider), fold(tenant, "model", model))
            if label not in family and len(family) >= MAX_SERIES:
                self.folder.folded += 1
                return _ALL_OTHER
            return label

        with self._lock:
            for (tenant, service, provider, model), value in cost.items():
                label = labels(tenant, service, provider, model, self._cost)
                self._cost[label] = self._cost.get(label, 0) + value
            for (tenant, service, provider, model), counts in tokens.items():
                label = labels(tenant, service, provider, model, self._tokens)
                total = self._tokens.setdefault(label, [0, 0, 0, 0, 0])
                for i, n in enumerate(counts):
                    total[i] += n
            for (tenant, provider, model, reason), n in unpriced.items():
                ulabel = (fold(tenant, "provider", provider), fold(tenant, "model", model), reason)
                if ulabel not in self._unpriced and len(self._unpriced) >= MAX_SERIES:
                    self.folder.folded += 1
                    ulabel = (OTHER, OTHER, reason)
                self._unpriced[ulabel] = self._unpriced.get(ulabel, 0) + n
            for (tenant, provider, model), n in disagree.items():
                dlabel = (fold(tenant, "provider", provider), fold(tenant, "model", model))
                if dlabel not in self._disagree and len(self._disagree) >= MAX_SERIES:
                    self.folder.folded += 1
                    dlabel = (OTHER, OTHER)
                self._disagree[dlabel] = self._disagree.get(dlabel, 0) + n

    def describe(self) -> list[CounterMetricFamily]:
        """The families, without samples: registered by name, so a scrape restricted to other names
        (``/metrics?name[]=...``) does not collect them."""
        return list(self._families({}, {}, {}, {}))

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            cost = dict(self._cost)
            tokens = {k: list(v) for k, v in self._tokens.items()}
            unpriced = dict(self._unpriced)
            disagree = dict(self._disagree)
        return self._families(cost, tokens, unpriced, disagree)

    def _families(self, cost: dict[tuple[str, str, str], int], tokens: dict[tuple[str, str, str], list[int]],
                  unpriced: dict[tuple[str, str, str], int],
                  disagree: dict[tuple[str, str], int]) -> Iterator[CounterMetricFamily]:
        fam = CounterMetricFamily("llm_cost_usd", "Spend priced from LLM spans, in USD.",
                                  labels=("service", "provider", "model"))
        for key, pusd in cost.items():
            fam.add_metric(key, pusd / PICO_PER_USD)
        yield fam
        fam = CounterMetricFamily("llm_tokens", "Tokens of LLM spans by type (cache and reasoning are subsets).",
                                  labels=("service", "provider", "model", "type"))
        for key, counts in tokens.items():
            for kind, n in zip(TOKEN_TYPES, counts, strict=True):
                fam.add_metric((*key, kind), n)
        yield fam
        yield CounterMetricFamily("llm_metric_labels_folded", "Label values folded into 'other' by per-tenant "
                                  "cardinality limits.", value=self.folder.folded)
        fam = CounterMetricFamily("llm_unpriced_spans", "LLM spans stored without a cost or with part of it, by "
                                  "reason: unknown_model (no price in the catalog), no_usage (the span reports no "
                                  "token usage) or missing:<dimensions> (partial: a dimension without a price).",
                                  labels=("provider", "model", "reason"))
        for ukey, n in unpriced.items():
            fam.add_metric(ukey, n)
        yield fam
        fam = CounterMetricFamily("llm_reported_cost_disagreements", "Priced spans whose producer-reported cost "
                                  "differs from the computed one by more than [pricing] reported_cost_tolerance.",
                                  labels=("provider", "model"))
        for dkey, n in disagree.items():
            fam.add_metric(dkey, n)
        yield fam


class Metrics:
    """The registry and every metric a process exposes on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.spend = SpendCollector()
        r.register(self.spend)
        self.spans_received = Counter("llm_pipeline_spans_received", "Spans received, by kind (llm or other).",
                                      ("kind",), registry=r)
        self.spans_rejected = Counter("llm_pipeline_spans_rejected", "Spans rejected, by reason.",
                                      ("reason",), registry=r)
        self.exports = Counter("llm_pipeline_exports", "OTLP Export calls answered (gRPC and HTTP), by outcome as "
                               "a gRPC status code name.", ("code",), registry=r)
        self.http_exports = Counter("llm_pipeline_http_exports", "OTLP/HTTP Export requests answered, by HTTP "
                                    "status.", ("status",), registry=r)
        self.queue_depth = Gauge("llm_pipeline_queue_depth", "Spans accepted and waiting to be written.", registry=r)
        self.queue_capacity = Gauge("llm_pipeline_queue_capacity", "Capacity of the in-process queue, in spans.",
                                    registry=r)
        self.rows_written = Counter("llm_pipeline_rows_written", "Rows written to the store.", registry=r)
        self.spans_deduplicated = Counter(
            "llm_pipeline_spans_deduplicated", "Spans not written because llm_spans already holds them (same "
            "tenant, trace id, span id and start time: a retry or a redelivery).", registry=r)
        self.batches_written = Counter("llm_pipeline_batches_written", "Batches written to the store.", registry=r)
        self.batch_seconds = Histogram("llm_pipeline_batch_seconds", "Time to write one batch to the store.",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.sink_errors = Counter("llm_pipeline_sink_errors", "Failed writes to the store, by whether retried.",
                                   ("retriable",), registry=r)
        self.columnar_requests = Counter(
            "llm_pipeline_columnar_requests", "Scanned requests the columnar path decided (no Python object per span), "
            "or declined to the per-span stages.", ("outcome",), registry=r)
        self.attributes_truncated = Counter("llm_pipeline_attributes_truncated",
                                            "Span attributes not stored because a span exceeded the limits.",
                                            registry=r)
        self.duplicate_spans = Counter("llm_duplicate_spans", "LLM spans of a provider call another span already "
                                       "carries the cost of (stored as duplicate, cost NULL), by matching rule.",
                                       ("rule",), registry=r)
        self.call_window_evictions = Counter("llm_call_window_evictions", "Spans forgotten by call identity before "
                                             "their age limit (capacity) or at it (age).", ("reason",), registry=r)
        self.call_window_entries = Gauge("llm_call_window_entries", "Spans call identity remembers now.",
                                         registry=r)
        self.redactions = Counter("llm_redactions", "Attributes dropped or hashed, and entities masked, by the "
                                  "redaction stage, by detector and mode (never the values).",
                                  ("detector", "mode"), registry=r)

    def rows_written_total(self) -> int:
        """Rows this process wrote to the store so far (the counter holds it as a float)."""
        return int(self.rows_written._value.get())
