"""The price stage's two paths decide every span the same way.

``Price.process`` (a request's records at once, the columnar engine where it applies) must leave each
record exactly as ``Price.__call__`` (one span, the per-span engine) leaves it: cost, cache savings,
model, version, status, the missing-dimensions attribute, the reported-cost fallback and the
unpriced-model callback. Generated spans mix everything that sends a row one way or the other: known,
aliased, discounted and unknown models, response vs request model, tenants with their own prices, times
before, between and after price versions, usage from none to beyond int64's femto-USD range, cache and
reasoning tokens, image models, a service tier attribute and a producer's reported cost.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.price import Price
from llm_cost_tracker.transforms.usage import MAX_TOKENS
from llm_cost_tracker.types import SpanRecord, TokenUsage, UsageDetail

PRICES = Path(__file__).parents[1] / "pricing" / "testdata" / "prices.toml"
CATALOG = PriceCatalog.load(PRICES)
NAMES = [
    ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "gpt-4o-2024-05-13"), ("openai", "o3"),
    ("openai", "gpt-image-1"), ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123"),
    ("anthropic", "claude-sonnet-4-5-20250929"), ("anthropic", "claude-3-5-haiku-latest"),
    ("gcp.gemini", "gemini-2.5-pro"), ("gcp.vertex_ai", "gemini-2.0-flash"), ("azure", "prod-gpt4o-eastus"),
    ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"), ("selfhosted", "llama-3-70b"),
    ("openai", "no-such-model"), ("mystery", "gpt-4o"), ("", ""),
]
YEAR_NS = 365 * 86_400 * 10**9
START = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**9
TOKEN_RANGES = [(0, 0), (1, 2_000), (0, 2_000_000), (0, MAX_TOKENS)]
"""Up to what usage extraction keeps (larger counts are rejected there): the exact-integer path is reached."""


def make_span(pick: Callable[[Sequence[Any]], Any], integer: Callable[[int, int], int]) -> SpanRecord:
    """One span from ``pick`` (an element of a list) and ``integer`` (a number in a closed range): hypothesis's
    draws in the property test, a seeded ``random.Random`` where a test needs many spans at once."""
    provider, response = pick(NAMES)
    request = pick([response, "", "gpt-4o-mini", "no-such-model"])
    response = pick([response, response, ""])
    inp, out = integer(*pick(TOKEN_RANGES)), integer(*pick(TOKEN_RANGES))
    detail = UsageDetail(input_audio_tokens=inp // 2) if integer(0, 3) == 0 else TokenUsage().detail
    usage = TokenUsage(inp, out, integer(0, inp), pick([0, inp // 3]), integer(0, out), detail)
    attributes = {"gen_ai.system": provider}
    if integer(0, 9) == 0:
        attributes["llm_cost_tracker.service_tier"] = pick(["flex", "priority", "batch"])
    return span_record(provider=provider, response_model=response, request_model=request, usage=usage,
                       tenant=pick(["", "", "acme", "globex"]), start_time_ns=START + integer(-YEAR_NS, 5 * YEAR_NS),
                       reported_cost_pusd=pick([None, 0, 1_234_567]), attributes=attributes)


def clone(record: SpanRecord) -> SpanRecord:
    """A copy whose mutable fields are its own; the usage is shared, as decoding shares ``NO_DETAIL`` (a deep
    copy would make every usage look detailed and send every span down the per-span path)."""
    return dataclasses.replace(record, attributes=dict(record.attributes))


@st.composite
def spans(draw: st.DrawFn) -> SpanRecord:
    return make_span(lambda seq: draw(st.sampled_from(seq)), lambda a, b: draw(st.integers(a, b)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(spans(), min_size=1, max_size=40), fallback=st.booleans())
def test_process_leaves_every_record_as_the_per_span_path_does(records: list, fallback: bool) -> None:
    told_one: list[tuple[str, str]] = []
    told_all: list[tuple[str, str]] = []
    one = Price(lambda: CATALOG, lambda p, m: told_one.append((p, m)), reported_cost_fallback=fallback)
    batch = Price(lambda: CATALOG, lambda p, m: told_all.append((p, m)), reported_cost_fallback=fallback)
    expected = [one(clone(r)) for r in records]
    got = batch.process([clone(r) for r in records])
    assert got == expected
    assert sorted(told_all) == sorted(told_one)


def test_the_generated_spans_take_both_paths() -> None:
    """The comparison above means something only if both engines price: count the spans each one settles."""
    rng = random.Random(7)
    records = [make_span(rng.choice, rng.randint) for _ in range(400)]
    per_span: list[str] = []
    original = Price._one

    def counted(self: Price, record: SpanRecord, catalog: Any) -> SpanRecord:
        per_span.append(record.span_id)
        return original(self, record, catalog)

    Price._one = counted  # type: ignore[method-assign]
    try:
        Price(lambda: CATALOG).process(records)
    finally:
        Price._one = original  # type: ignore[method-assign]
    alone = set(per_span)
    columnar = [r for r in records if r.pricing_status == "priced" and r.span_id not in alone]
    assert len(columnar) > 50 and len(alone) > 20, (len(columnar), len(alone))


def test_chain_runs_the_price_stage_on_the_whole_request_and_falls_back_per_span() -> None:
    """The chain hands Price the request's records at once; if that call fails, each span is priced alone and
    only a span that fails alone is rejected."""
    calls: list[int] = []

    class Flaky(Price):
        def process(self, records, columns=None):  # type: ignore[no-untyped-def]
            calls.append(len(records))
            raise RuntimeError("batch bug")

    records = [span_record(provider="openai", response_model="gpt-4o", usage=TokenUsage(100, 10),
                           start_time_ns=START + 3 * YEAR_NS) for _ in range(5)]
    rejected: list[tuple[str, str]] = []
    out = Chain([Flaky(lambda: CATALOG)]).process(records, lambda reason, msg: rejected.append((reason, msg)))
    assert calls == [5]
    assert [r.pricing_status for r in out.records] == ["priced"] * 5 and not rejected
    assert out.records[0].cost_pusd == Price(lambda: CATALOG)(clone(records[0])).cost_pusd
