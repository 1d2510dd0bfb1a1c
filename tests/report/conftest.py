"""Known spans for the cookbook and report tests, placed relative to the current month."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage

USD = 10**12  # pico-USD per dollar
_ids = itertools.count(1)


def span(at: dt.datetime, tenant: str, service: str, provider: str, model: str, cost: int | None,
         tokens: tuple[int, int, int], duration_ms: int, trace: str, conversation: str = "",
         savings: int = 0) -> SpanRecord:
    i = next(_ids)
    attributes = {"gen_ai.conversation.id": conversation} if conversation else {}
    return span_record(
        trace_id=trace, span_id=f"{i:016x}", start_time_ns=int(at.timestamp()) * 10**9 + i,
        duration_ns=duration_ms * 1_000_000, service_name=service, attributes=attributes, tenant=tenant,
        provider=provider, request_model=model, response_model=model, usage=TokenUsage(tokens[0], tokens[1], tokens[2]),
        pricing_model=f"{provider}/{model}" if cost is not None else "", price_version="v1" if cost else "",
        cost_pusd=cost, cache_savings_pusd=savings if cost is not None else None,
    )


def known_spans(now: dt.datetime) -> list[SpanRecord]:
    """Six spans this month, two last month; see tests/report/test_cookbook.py for the expected answers."""
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this = month + (now - month) / 2  # this month, before now, whatever the day
    last = month - dt.timedelta(hours=12)
    return [
        span(this, "acme", "chat-api", "openai", "gpt-4o", USD // 100, (1000, 200, 400), 1000, "t1", "c1",
             savings=USD // 2000),
        span(this, "acme", "chat-api", "openai", "gpt-4o", USD // 50, (2000, 400, 0), 3000, "t1", "c1"),
        span(this, "acme", "search", "anthropic", "claude-sonnet-4", USD // 25, (3000, 100, 1000), 2000, "t2", "c2",
             savings=27 * USD // 10000),
        span(this, "globex", "batch", "openai", "gpt-4o", USD // 2, (50000, 10000, 0), 10000, "t3"),
        span(this, "globex", "batch", "openai", "mystery-1", None, (700, 70, 0), 500, "t3"),
        span(this, "acme", "chat-api", "openai", "mystery-1", None, (300, 30, 0), 400, "t4"),
        span(last, "acme", "chat-api", "openai", "gpt-4o", USD, (100000, 20000, 0), 5000, "t5"),
        span(last, "globex", "batch", "openai", "gpt-4o", 2 * USD, (100000, 20000, 0), 5000, "t6"),
    ]


@pytest.fixture
def loaded(store: Any) -> tuple[Any, dt.datetime]:
    """The store with :func:`known_spans` written through the sink (so through the rollup views)."""
    now = dt.datetime.now(dt.UTC)
    spans = known_spans(now)
    sink = ClickHouseSink(store)
    sink.write(spans[:3], dedup_token="a")
    sink.write(spans[3:], dedup_token="b")
    return store, now
