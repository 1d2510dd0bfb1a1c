"""Helpers for the budget tests: records with chosen times, scope values and costs."""

from __future__ import annotations

import itertools

from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import PICO_PER_USD, SpanRecord, TokenUsage

_ids = itertools.count(1)
NS = 1_000_000_000
USD = PICO_PER_USD


def rec(at_ns: int, cost: int | None = USD, *, tenant: str = "acme", service: str = "chat-api",
        provider: str = "openai", model: str = "gpt-4o", attributes: dict[str, str] | None = None) -> SpanRecord:
    """One priced span starting at ``at_ns`` costing ``cost`` pico-USD (None = unpriced)."""
    i = next(_ids)
    return span_record(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time_ns=at_ns, duration_ns=NS, service_name=service,
        resource_attributes={"service.name": service}, attributes=attributes or {}, tenant=tenant, provider=provider,
        request_model=model, response_model=model, usage=TokenUsage(100, 20), cost_pusd=cost,
    )
