"""Helpers for the storage tests: records with chosen times, costs and tokens."""

from __future__ import annotations

import itertools
from typing import Any

from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage

_ids = itertools.count(1)
NS = 1_000_000_000


def span(at_s: float, *, cost: int | None = 1_000_000, tenant: str = "acme", service: str = "chat-api",
         provider: str = "openai", model: str = "gpt-4o", tokens: tuple[int, ...] = (100, 20, 0, 0, 0),
         savings: int | None = 0, duration_ms: float = 800.0, trace: str = "", status: int = 0,
         attributes: dict[str, str] | None = None, **extra: Any) -> SpanRecord:
    """One span starting at ``at_s`` (Unix seconds) costing ``cost`` pico-USD (None = unpriced)."""
    i = next(_ids)
    return span_record(
        trace_id=trace or f"{i:032x}", span_id=f"{i:016x}", start_time_ns=int(at_s * NS),
        duration_ns=int(duration_ms * 1_000_000), service_name=service, status_code=status,
        resource_attributes={"service.name": service}, attributes=attributes or {}, tenant=tenant,
        provider=provider, request_model=model, response_model=model, usage=TokenUsage(*tokens),
        pricing_model=f"{provider}/{model}" if cost is not None else "", price_version="v1" if cost is not None else "",
        cost_pusd=cost, cache_savings_pusd=savings if cost is not None else None, **extra,
    )
