"""Stored LLM spans -> OTLP spans carrying their cost, for the next hop (the user's tracing backend).

Pure: records in, an ``ExportTraceServiceRequest`` out. A span goes out as it was stored (names and
attributes after redaction, so no secret leaves in clear), grouped by its resource, with these
attributes added:

- ``llm_cost_tracker.cost_usd``: the stored cost as an exact decimal string (``0.000285``), absent when
  the span has no cost (never a silent zero);
- ``llm.cost.total``, and ``llm.cost.prompt`` / ``llm.cost.completion`` when the price's breakdown can be
  split that way: USD as doubles, the names OpenInference uses (display only: the string is exact);
- ``llm_cost_tracker.price_version`` and ``llm_cost_tracker.pricing_status`` (``priced``, ``partial``,
  ``reported``, ``unpriced``, ``no_usage``, ``duplicate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from llm_cost_tracker.types import PICO_PER_USD, SpanRecord

__all__ = ["COMPLETION", "COST_USD", "PRICE_VERSION", "PRICING_STATUS", "PROMPT", "SCOPE", "TOTAL", "Split",
           "as_records", "catalog_split", "cost_split", "priced_requests", "usd"]

COST_USD = "llm_cost_tracker.cost_usd"
PRICE_VERSION = "llm_cost_tracker.price_version"
PRICING_STATUS = "llm_cost_tracker.pricing_status"
TOTAL = "llm.cost.total"
PROMPT = "llm.cost.prompt"
COMPLETION = "llm.cost.completion"
SCOPE = "llm-cost-tracker"
"""Instrumentation scope name of forwarded spans (the original scope is not stored)."""
_PICO = Decimal(PICO_PER_USD)
_PROMPT_DIMENSIONS = frozenset({"input", "cache_read", "cache_write", "cache_write_1h", "input_audio",
                                "input_image", "input_text"})
_COMPLETION_DIMENSIONS = frozenset({"output", "reasoning", "output_audio", "output_image", "output_text"})

Split = Callable[[SpanRecord], "tuple[int, int] | None"]
"""A record -> (prompt, completion) pico-USD that add up to its cost, or None when unknown."""


def usd(pusd: int) -> str:
    """Pico-USD as an exact decimal string without exponent or trailing zeros (``285000000`` -> ``0.000285``)."""
    text = format(Decimal(pusd) / _PICO, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost_split(breakdown: Mapping[str, int], cost_pusd: int) -> tuple[int, int] | None:
    """(prompt, completion) pico-USD of a price breakdown, or None when a dimension is neither (a discount,
    a per-request fee...) or the parts do not add up to ``cost_pusd``: never a split that misleads."""
    prompt = completion = 0
    for dimension, pusd in breakdown.items():
        if dimension in _PROMPT_DIMENSIONS:
            prompt += pusd
        elif dimension in _COMPLETION_DIMENSIONS:
            completion += pusd
        else:
            return None
    return (prompt, completion) if prompt + completion == cost_pusd else None


def as_records(stored: Any) -> list[SpanRecord]:
    """What the writer stored (a list of SpanRecords, or ``SpanColumns`` and the like) as SpanRecords."""
    if isinstance(stored, list):
        return stored
    to_records: Callable[[], list[SpanRecord]] | None = getattr(stored, "to_records", None)
    if to_records is None:
        raise TypeError(f"cannot forward records held as {type(stored).__name__}")
    return to_records()


def _attribute(span: Span | ResourceSpans, key: str, value: str | float) -> None:
    attributes = span.attributes if isinstance(span, Span) else span.resource.attributes
    kv: KeyValue = attributes.add()
    kv.key = key
    if isinstance(value, str):
        kv.value.string_value = value
    else:
        kv.value.double_value = value


def _span(record: SpanRecord, split: Split | None) -> Span:
    span = Span(trace_id=bytes.fromhex(record.trace_id), span_id=bytes.fromhex(record.span_id),
                parent_span_id=bytes.fromhex(record.parent_span_id), name=record.span_name,
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=record.start_time_ns,
                end_time_unix_nano=record.start_time_ns + record.duration_ns)
    span.status.code = record.status_code  # type: ignore[assignment, unused-ignore]
    for key, value in record.attributes.items():
        if key not in (COST_USD, PRICE_VERSION, PRICING_STATUS, TOTAL, PROMPT, COMPLETION):
            _attribute(span, key, value)
    if record.cost_pusd is not None:
        _attribute(span, COST_USD, usd(record.cost_pusd))
        _attribute(span, TOTAL, record.cost_pusd / PICO_PER_USD)
        parts = split(record) if split is not None else None
        if parts is not None:
            _attribute(span, PROMPT, parts[0] / PICO_PER_USD)
            _attribute(span, COMPLETION, parts[1] / PICO_PER_USD)
    if record.price_version:
        _attribute(span, PRICE_VERSION, record.price_version)
    _attribute(span, PRICING_STATUS, record.pricing_status)
    return span


def priced_requests(records: Iterable[SpanRecord], max_spans: int = 512,
                    split: Split | None = None) -> list[tuple[ExportTraceServiceRequest, int]]:
    """Export requests of at most ``max_spans`` spans each, with their span counts.

    Spans of one resource (the same stored resource attributes and service) share a ``ResourceSpans``.
    """
    out: list[tuple[ExportTraceServiceRequest, int]] = []
    request = ExportTraceServiceRequest()
    groups: dict[tuple[tuple[str, str], ...], Any] = {}
    count = 0
    for record in records:
        if count == max_spans:
            out.append((request, count))
            request, groups, count = ExportTraceServiceRequest(), {}, 0
        resource = {"service.name": record.service_name, **record.resource_attributes}
        key = tuple(sorted(resource.items()))
        scope = groups.get(key)
        if scope is None:
            resource_spans = request.resource_spans.add()
            for name, value in resource.items():
                _attribute(resource_spans, name, value)
            scope = groups[key] = resource_spans.scope_spans.add()
            scope.scope.name = SCOPE
        scope.spans.append(_span(record, split))
        count += 1
    if count:
        out.append((request, count))
    return out


def catalog_split(catalog: Callable[[], Any]) -> Split:
    """A :data:`Split` that re-quotes a record with the catalog in force and splits the breakdown, when the
    quote is the stored one (same price version and cost); None otherwise (e.g. after a price change)."""

    def split(record: SpanRecord) -> tuple[int, int] | None:
        if record.cost_pusd is None or record.pricing_status not in ("priced",):
            return None
        quote = None
        try:
            for name in (record.response_model, record.request_model):  # as the Price stage tries them
                if name:
                    quote = catalog().quote(provider=record.provider, model=name, at_ns=record.start_time_ns,
                                            usage=record.usage, attributes=record.attributes, tenant=record.tenant)
                    if quote is not None:
                        break
        except Exception:  # a split is a nicety: never a reason not to forward
            return None
        if quote is None or quote.price_version != record.price_version or quote.cost_pusd != record.cost_pusd:
            return None
        return cost_split(quote.breakdown, record.cost_pusd)

    return split

