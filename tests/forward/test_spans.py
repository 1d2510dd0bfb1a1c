"""Stored records -> OTLP spans with their cost attributes (pure)."""

from __future__ import annotations

from decimal import Decimal

from llm_cost_tracker.forward.spans import (
    COST_USD,
    PRICE_VERSION,
    PRICING_STATUS,
    TOTAL,
    cost_split,
    priced_requests,
    usd,
)
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import PICO_PER_USD, SpanRecord


def record(span_id: str, cost_pusd: int | None, status: str = "priced", service: str = "chatbot") -> SpanRecord:
    return span_record(trace_id="ab" * 16, span_id=span_id, start_time_ns=1_700_000_000_000_000_000, duration_ns=5,
                       service_name=service, span_name="chat gpt-4o-mini", status_code=1,
                       resource_attributes={"tenant.id": "acme"},
                       attributes={"gen_ai.request.model": "gpt-4o-mini", COST_USD: "spoofed"}, tenant="acme",
                       cost_pusd=cost_pusd, pricing_status=status,
                       price_version="litellm-1.110.2" if cost_pusd else "")


def attributes(span: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in span.attributes:  # type: ignore[attr-defined]
        out[kv.key] = getattr(kv.value, kv.value.WhichOneof("value"))
    return out


def test_usd_is_exact_and_plain() -> None:
    assert usd(285_000_000) == "0.000285"
    assert usd(1) == "0.000000000001"
    assert usd(12 * PICO_PER_USD) == "12"
    assert usd(0) == "0"
    assert Decimal(usd(123_456_789_012_345)) * PICO_PER_USD == 123_456_789_012_345


def test_priced_spans_carry_the_exact_cost_and_unpriced_ones_none() -> None:
    (request, count), = priced_requests([record("01" * 8, 285_000_000), record("02" * 8, None, "unpriced")])
    assert count == 2
    priced, unpriced = request.resource_spans[0].scope_spans[0].spans
    a = attributes(priced)
    assert a[COST_USD] == "0.000285" and a[TOTAL] == 0.000285 and a[PRICE_VERSION] == "litellm-1.110.2"
    assert a[PRICING_STATUS] == "priced" and a["gen_ai.request.model"] == "gpt-4o-mini"
    assert list(a).count(COST_USD) == 1  # the producer's own attribute of that name is replaced, not repeated
    b = attributes(unpriced)
    assert COST_USD not in b and TOTAL not in b and b[PRICING_STATUS] == "unpriced"  # never a silent zero
    assert priced.trace_id.hex() == "ab" * 16 and priced.span_id.hex() == "01" * 8
    assert priced.end_time_unix_nano - priced.start_time_unix_nano == 5 and priced.status.code == 1
    resource = {kv.key: kv.value.string_value for kv in request.resource_spans[0].resource.attributes}
    assert resource == {"service.name": "chatbot", "tenant.id": "acme"}


def test_requests_are_cut_at_max_spans_and_grouped_by_resource() -> None:
    records = [record(f"{i:016x}", 1, service=f"svc{i % 2}") for i in range(5)]
    requests = priced_requests(records, max_spans=2)
    assert [count for _, count in requests] == [2, 2, 1]
    assert [len(r.resource_spans) for r, _ in requests] == [2, 2, 1]


def test_the_prompt_completion_split_is_given_only_when_it_adds_up() -> None:
    assert cost_split({"input": 30, "cache_read": 75, "output": 180}, 285) == (105, 180)
    assert cost_split({"input": 30, "output": 180, "reasoning": 20}, 230) == (30, 200)
    assert cost_split({"input": 30, "output": 180, "discount": -21}, 189) is None
    assert cost_split({"input": 30, "output": 180}, 999) is None
