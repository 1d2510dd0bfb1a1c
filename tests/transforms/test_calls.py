"""Call identity: which spans are the same provider call, which one carries the cost, bounded memory."""

from __future__ import annotations

import threading

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms.calls import DUPLICATE_OF, DUPLICATE_RULE, CallIdentity, CallWindow
from llm_cost_tracker.types import SpanRecord, TokenUsage

S = 10**9


def _id(name: str, size: int) -> str:
    return name.encode().hex().rjust(size, "0")


def span(span_id: str, *, scope: str, response_id: str = "", trace: str = "t1", parent: str = "", start: int = 0,
         end: int = S, usage: tuple[int, int] = (1000, 200), tenant: str = "", service: str = "svc",
         instance: str = "i-1") -> SpanRecord:
    attrs = {"gen_ai.response.id": response_id} if response_id else {}
    return span_record(trace_id=_id(trace, 32), span_id=_id(span_id, 16), parent_span_id=_id(parent, 16) if parent else "",
                       start_time_ns=start, duration_ns=end - start, service_name=service,
                       resource_attributes={"service.instance.id": instance}, attributes=attrs, tenant=tenant,
                       provider="openai", request_model="gpt-4o-mini", usage=TokenUsage(*usage), cost_pusd=1000,
                       scope_name=scope)


def statuses(records: list[SpanRecord]) -> list[str]:
    return [r.pricing_status for r in records]


def test_same_response_id_in_separate_exports_is_one_call() -> None:
    """Two instrumentations' spans naming one response, exported apart: the first carries the cost."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="msg_1", trace="t1")
    b = span("b", scope="instr", response_id="msg_1", trace="t2", usage=(1000, 201))  # counts may differ
    calls([a])
    calls([b])
    assert statuses([a, b]) == ["priced", "duplicate"]
    assert (b.cost_pusd, b.attributes[DUPLICATE_OF], b.attributes[DUPLICATE_RULE]) == (None, a.span_id, "response_id")


def test_within_one_export_the_span_that_ended_first_carries_the_cost() -> None:
    """The rule does not depend on the order inside the request: the earlier end wins."""
    calls = CallIdentity()
    outer = span("outer", scope="oi", start=0, end=3 * S)
    inner = span("inner", scope="sdk", parent="outer", start=S, end=2 * S, response_id="msg_1")
    calls([outer, inner])
    assert statuses([outer, inner]) == ["duplicate", "priced"]
    assert outer.attributes[DUPLICATE_RULE] == "nested"


def test_same_response_id_of_another_tenant_or_provider_is_another_call() -> None:
    calls = CallIdentity()
    a = span("a", scope="x", response_id="r", tenant="acme")
    b = span("b", scope="y", response_id="r", tenant="beta", usage=(1, 1))
    calls([a])
    calls([b])
    assert statuses([a, b]) == ["priced", "priced"]


def test_identical_concurrent_calls_of_one_instrumentation_are_two_calls() -> None:
    """Same usage, overlapping, same scope: two calls (only another instrumentation's span can be a copy)."""
    calls = CallIdentity()
    a, b = span("a", scope="openai", trace="t1"), span("b", scope="openai", trace="t2")
    calls([a, b])
    assert statuses([a, b]) == ["priced", "priced"]


def test_overlap_pairs_one_to_one() -> None:
    """Two identical concurrent calls seen by two instrumentations (in separate traces): two priced, two
    duplicates, whatever the pairing."""
    calls = CallIdentity()
    spans = [span("a1", scope="openai", trace="t1", start=1, end=S), span("a2", scope="openai", trace="t2", start=2,
             end=S + 1), span("l1", scope="langchain", trace="t3", start=0, end=S + 2),
             span("l2", scope="langchain", trace="t4", start=0, end=S + 3)]
    calls(spans)
    assert statuses(spans) == ["priced", "priced", "duplicate", "duplicate"]
    assert {s.attributes[DUPLICATE_OF] for s in spans[2:]} == {spans[0].span_id, spans[1].span_id}


def test_overlap_needs_overlapping_times_same_instance_and_usage() -> None:
    calls = CallIdentity()
    a = span("a", scope="openai", start=0, end=S)
    later = span("b", scope="langchain", start=2 * S, end=3 * S, trace="t2")
    other_instance = span("c", scope="langchain", instance="i-2", trace="t3")
    other_usage = span("d", scope="langchain", usage=(1000, 199), trace="t4")
    calls([a, later, other_instance, other_usage])
    assert statuses([a, later, other_instance, other_usage]) == ["priced"] * 4


def test_a_retried_span_is_not_its_own_duplicate() -> None:
    """The same span id again (a retried Export) is span identity, not a second instrumentation."""
    calls = CallIdentity()
    a = span("a", scope="x", response_id="r")
    calls([a])
    again = span("a", scope="x", response_id="r")
    calls([again])
    assert again.pricing_status == "priced"


def test_a_retried_duplicate_is_a_duplicate_again() -> None:
    calls = CallIdentity()
    carrier, dup = span("a", scope="openai"), span("b", scope="langchain", trace="t2")
    calls([carrier])
    calls([dup])
    retry = span("b", scope="langchain", trace="t2")
    calls([retry])
    assert statuses([dup, retry]) == ["duplicate", "duplicate"]


def test_a_refused_export_is_forgotten() -> None:
    """When the queue refuses an Export its spans are forgotten: the next span of the call carries the cost."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="r")
    calls([a])
    calls.forget([a])
    b = span("b", scope="instr", response_id="r", trace="t2")
    calls([b])
    assert b.pricing_status == "priced"
    assert calls.size == 1


def test_memory_is_bounded_by_entries_and_age() -> None:
    """Past max_entries the oldest span is forgotten, and every span after max_age_seconds; both counted."""
    now = [0.0]
    evicted: dict[str, int] = {}
    calls = CallIdentity(CallWindow(max_entries=100, max_age_seconds=60), on_evict=lambda why, n: evicted.update(
        {why: evicted.get(why, 0) + n}), clock=lambda: now[0])
    for i in range(250):
        calls([span(f"{i:x}", scope="x", response_id=f"r{i}", trace=f"{i:x}", usage=(i + 1, 1))])
    assert calls.size == 100 and evicted == {"capacity": 150}
    late = span("late", scope="y", response_id="r0", trace="zz", usage=(1, 1))
    calls([late])
    assert late.pricing_status == "priced"  # its carrier was forgotten: priced, never lost
    now[0] = 61.0
    calls([span("new", scope="x", response_id="new")])
    assert calls.size == 1 and evicted == {"capacity": 151, "age": 100}
    assert not calls._by_response.keys() - {("", "openai", "new")} and not calls._by_usage.keys() - {
        ("", "svc", "i-1", "openai", 1000, 200)}


def test_carriers_sharing_one_usage_are_matched_and_forgotten_in_order() -> None:
    """Calls with the same token counts from one instance share a usage bucket: a span of another scope
    matches the carrier it overlaps, evicted carriers leave the bucket oldest first, and an emptied
    bucket leaves nothing behind."""
    now = [0.0]
    calls = CallIdentity(CallWindow(max_entries=3, max_age_seconds=60), clock=lambda: now[0])
    carriers = [span(f"c{i}", scope="sdk", trace=f"t{i}", start=10 * i * S, end=(10 * i + 1) * S) for i in range(5)]
    for c in carriers:
        calls([c])  # one scope: never each other's duplicates
    assert statuses(carriers) == ["priced"] * 5 and calls.size == 3  # c0 and c1 forgotten
    early = span("e1", scope="instr", trace="u1", start=10 * S, end=11 * S)  # overlaps c1 (forgotten)
    late = span("e3", scope="instr", trace="u3", start=30 * S, end=31 * S)  # overlaps c3
    calls([early])
    calls([late])
    assert (early.pricing_status, late.pricing_status) == ("priced", "duplicate")
    assert late.attributes[DUPLICATE_OF] == carriers[3].span_id
    now[0] = 61.0
    calls([])
    calls([span("x", scope="sdk", trace="x", usage=(7, 7))])
    assert calls.size == 1 and list(calls._by_usage) == [("", "svc", "i-1", "openai", 7, 7)]


def test_threads_share_one_window() -> None:
    """Export handlers run on several threads: each call is still priced exactly once."""
    calls = CallIdentity()
    pairs = [(span(f"a{i}", scope="sdk", response_id=f"r{i}", trace=f"a{i}"),
              span(f"b{i}", scope="instr", response_id=f"r{i}", trace=f"b{i}")) for i in range(2000)]

    def feed(side: int) -> None:
        for pair in pairs:
            calls([pair[side]])

    threads = [threading.Thread(target=feed, args=(side,)) for side in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sorted(statuses(list(p))) == ["duplicate", "priced"] for p in pairs)


def test_duplicates_add_to_no_spend_metric() -> None:
    """llm_cost_usd, llm_tokens and llm_unpriced_spans leave duplicates out; unpriced spans carry a reason."""
    metrics = Metrics()
    carrier = span("a", scope="sdk", response_id="r")
    dup = span("b", scope="instr", response_id="r", trace="t2")
    no_usage = span("c", scope="sdk", usage=(0, 0), trace="t3")
    no_usage.cost_pusd, no_usage.pricing_status = None, "no_usage"
    unknown = span("d", scope="sdk", trace="t4", usage=(5, 5))
    unknown.cost_pusd, unknown.pricing_status = None, "unpriced"
    CallIdentity()([carrier, dup])
    metrics.spend.observe([carrier, dup, no_usage, unknown])
    got = {(m.name, tuple(sorted(s.labels.items()))): s.value for m in metrics.spend.collect() for s in m.samples}
    assert got[("llm_cost_usd", (("model", "gpt-4o-mini"), ("provider", "openai"), ("service", "svc")))] == 1e-9
    key = ("llm_tokens", (("model", "gpt-4o-mini"), ("provider", "openai"), ("service", "svc"), ("type", "input")))
    assert got[key] == 1000 + 0 + 5
    unpriced = {dict(k[1])["reason"]: v for k, v in got.items() if k[0] == "llm_unpriced_spans"}
    assert unpriced == {"no_usage": 1, "unknown_model": 1}


def test_spans_naming_different_responses_are_different_calls() -> None:
    """Identical usage and overlapping times from two scopes, but each names its own response: two calls."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="msg_1")
    b = span("b", scope="instr", response_id="msg_2", trace="t2")
    calls([a, b])
    assert statuses([a, b]) == ["priced", "priced"]
