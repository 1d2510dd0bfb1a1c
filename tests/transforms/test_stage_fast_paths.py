"""The early stages' fast paths decide every span as their plain per-record code does.

``ExtractUsage`` reads the common span inline from a per-key-tuple plan: it is compared with the plain
reading (every dialect key in priority order, the code it replaced, kept here as the oracle) on generated
attributes. ``Quirks.process`` and ``ScrubNames.process`` decide once per distinct (provider, operation,
scope) or tuple of names, and ``Price.process`` skips the pricing-attribute probe for records the columns
describe: each is compared with the stage's ``__call__`` span by span, and the whole chain over a wire-scanned
request with the stages run one record at a time.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.testing import SECRETS, genai_attributes, make_request, make_span, span_record
from llm_cost_tracker.transforms import quirks as q
from llm_cost_tracker.transforms import usage as u
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import Price
from llm_cost_tracker.transforms.quirks import QUIRKS, Quirks
from llm_cost_tracker.transforms.scrub import ScrubNames
from llm_cost_tracker.types import NO_DETAIL, Drop, SpanRecord, TokenUsage
from tests.conftest import wire_scanned

CATALOG = PriceCatalog.load(Path(__file__).parents[1] / "pricing" / "testdata" / "prices.toml")

# --- ExtractUsage: the plain reading, as it was before the plans read inline --------------------------


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((v for k in keys if (v := attrs.get(k))), "")


def _count(attrs: dict[str, str], keys: tuple[str, ...]) -> int:
    return next((u.parse_token_count(k, attrs[k]) for k in keys if k in attrs), 0)


def plain_extract(attrs: dict[str, str]) -> tuple[Any, ...]:
    """What ExtractUsage must set, read key by key in each field's priority order (or the Drop reason)."""
    try:
        input_tokens = _count(attrs, tuple(k for _, k in u._INPUT))
        output_tokens = _count(attrs, tuple(k for _, k in u._OUTPUT))
        cache_read, cache_write, reasoning = (_count(attrs, keys) for keys in (u._CACHE_READ, u._CACHE_WRITE,
                                                                              u._REASONING))
    except Drop as drop:
        return ("drop", drop.reason)
    dialect = next((d for d, k in u._INPUT + u._OUTPUT if k in attrs), "")
    if not dialect:
        dialect = "openinference" if "llm.model_name" in attrs or "embedding.model_name" in attrs else "genai"
    if cache_read + cache_write > input_tokens:
        input_tokens += cache_read + cache_write
    if reasoning > output_tokens:
        output_tokens += reasoning
    reported = _first(attrs, u._REPORTED_COST)
    return (dialect, _first(attrs, u._PROVIDER).lower(), _first(attrs, u._OPERATION).lower(),
            _first(attrs, u._REQUEST_MODEL), _first(attrs, u._RESPONSE_MODEL),
            TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning),
            u.parse_reported_cost(reported) if reported else None)


def extracted(stage: u.ExtractUsage, attrs: dict[str, str]) -> tuple[Any, ...]:
    try:
        r = stage(span_record(attributes=dict(attrs)))
    except Drop as drop:
        return ("drop", drop.reason)
    assert type(r.usage) is TokenUsage and r.usage.detail is NO_DETAIL
    return (r.dialect, r.provider, r.operation, r.request_model, r.response_model, r.usage, r.reported_cost_pusd)


COUNT_KEYS = [k for _, k in u._INPUT + u._OUTPUT] + [*u._CACHE_READ, *u._CACHE_WRITE, *u._REASONING]
NAME_KEYS = [*u._PROVIDER, *u._OPERATION, *u._REQUEST_MODEL, *u._RESPONSE_MODEL]
ODD_COUNTS = [str(n) for n in (0, u.MAX_TOKENS, u.MAX_TOKENS + 1, 2**29 - 1, 2**29, 2**30, -1, -(2**29))] + [
    "12.0", "1.5", "1e3", "1e30", "abc", "", " 7 ", "1_000", "+5", "\u0663", "nan", "inf", "-0", "9" * 5000]
NAMES = ["", "OpenAI", "anthropic", "gpt-4o", "Chat", "LLM", "0.0", "0"]


def make_attributes(pick: Callable[[Sequence[Any]], Any], integer: Callable[[int, int], int]) -> dict[str, str]:
    """Any mix of the dialects' keys (several for one field, in any order), with odd counts now and then: from
    hypothesis's draws in the property test, from a seeded ``random.Random`` where a test needs many at once."""
    groups = [[k for _, k in u._INPUT], [k for _, k in u._OUTPUT], u._CACHE_READ, u._CACHE_WRITE, u._REASONING,
              u._PROVIDER, u._OPERATION, u._REQUEST_MODEL, u._RESPONSE_MODEL, u._REPORTED_COST, ["other.key"]]
    attrs = {}
    for _ in range(integer(0, 14)):  # several keys of one field now and then (the first non-empty one wins)
        key = pick(pick(groups))
        if key in COUNT_KEYS:
            attrs[key] = str(integer(0, 5_000)) if integer(0, 3) else pick(ODD_COUNTS)
        elif key in u._REPORTED_COST:
            attrs[key] = pick(["0.0125", "0", "-1", "x", ""])
        else:
            attrs[key] = pick(NAMES)
    return attrs


@st.composite
def dialect_attributes(draw: st.DrawFn) -> dict[str, str]:
    return make_attributes(lambda seq: draw(st.sampled_from(seq)), lambda a, b: draw(st.integers(a, b)))


SHARED = u.ExtractUsage()
"""One stage across examples, as in a receiver: its plans are reused for the key tuples seen before."""


@settings(max_examples=400, deadline=None)
@given(attrs=dialect_attributes())
def test_extract_usage_reads_as_the_plain_code_does(attrs: dict[str, str]) -> None:
    expected = plain_extract(attrs)
    assert extracted(u.ExtractUsage(), attrs) == expected
    assert extracted(SHARED, attrs) == expected
    assert extracted(SHARED, attrs) == expected  # a second time, from the plan made by the first
    other = {k.encode().decode(): v for k, v in attrs.items()}  # equal keys, other objects: another request's
    assert extracted(SHARED, other) == expected


def test_a_plan_is_filed_again_under_the_latest_request_keys() -> None:
    """Each request's key strings are other objects: the plan found with equal strings is filed under the
    new tuple, so the next span of that request compares its keys by identity, not by their characters."""
    stage = u.ExtractUsage()
    first = {"gen_ai.usage.input_tokens": "3", "gen_ai.request.model": "m"}
    later = {k.encode().decode(): v for k, v in first.items()}
    assert extracted(stage, first) == extracted(stage, later) == plain_extract(first)
    [(keys, plan)] = stage._plans.items()
    assert all(a is b for a, b in zip(keys, later, strict=True)) and plan.first is keys[0]


@given(st.tuples(*[st.integers(0, u.MAX_TOKENS)] * 5))
def test_the_usage_built_slot_by_slot_is_the_dataclass(counts: tuple[int, int, int, int, int]) -> None:
    keys = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens")
    fast = u.ExtractUsage()(span_record(attributes={k: str(n) for k, n in zip(keys, counts, strict=True)})).usage
    i, o, r, w, x = counts
    made = TokenUsage(i + r + w if r + w > i else i, o + x if x > o else o, r, w, x)
    assert type(fast) is TokenUsage and fast == made and hash(fast) == hash(made) and repr(fast) == repr(made)
    assert fast.detail is NO_DETAIL and fast.uncached_input_tokens == made.uncached_input_tokens
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.input_tokens = 1  # type: ignore[misc]


def test_the_generated_attributes_take_every_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above means something only if the generated spans meet the inline reading, the general
    readers (odd counts, several keys for one name) and the drops: count the spans each one reads."""
    taken = {"inline": 0, "counts": 0, "names": 0, "drop": 0}
    for name in ("_counts", "_names"):
        original = getattr(u.ExtractUsage, name)

        def counted(*args: Any, _original: Any = original, _name: str = name) -> Any:
            taken[_name[1:]] += 1
            return _original(*args)

        monkeypatch.setattr(u.ExtractUsage, name, staticmethod(counted))
    stage = u.ExtractUsage()
    rng = random.Random(3)
    for _ in range(2000):
        before = dict(taken)
        if extracted(stage, make_attributes(rng.choice, rng.randint))[0] == "drop":
            taken["drop"] += 1
        elif taken == before:
            taken["inline"] += 1
    assert all(n > 100 for n in taken.values()), taken


def test_the_plans_are_bounded() -> None:
    stage = u.ExtractUsage()
    for i in range(u._PLAN_LIMIT + 10):
        stage(span_record(attributes={f"k{i}": "1", "gen_ai.usage.input_tokens": "3"}))
    assert len(stage._plans) <= u._PLAN_LIMIT


# --- Quirks -----------------------------------------------------------------------------------------


def quirk_record(rng: random.Random) -> SpanRecord:
    attrs = {"gen_ai.usage.input_tokens": str(rng.choice([10, 50])),
             "gen_ai.client.token.usage": str(rng.choice([60, 70, 100]))}
    if rng.random() < 0.4:
        attrs["gen_ai.usage.cache_read.input_tokens"] = "5"
    if rng.random() < 0.3:
        attrs["telemetry.sdk.name"] = rng.choice(["openlit", "opentelemetry"])
    resource = {"telemetry.sdk.name": rng.choice(["openlit", "opentelemetry"])} if rng.random() < 0.4 else {}
    return span_record(provider=rng.choice(["anthropic", "openai", "gcp.gemini", ""]),
                       operation=rng.choice(["chat", "embeddings", "text_completion"]),
                       scope_name=rng.choice(["opentelemetry.instrumentation.openai_v2", "openlit.otel.tracing", ""]),
                       usage=TokenUsage(rng.choice([10, 50, 65]), rng.choice([10, 50]), rng.choice([0, 5]), 0, 0),
                       attributes=attrs, resource_attributes=resource)


def clone(record: SpanRecord) -> SpanRecord:
    return dataclasses.replace(record, attributes=dict(record.attributes),
                               resource_attributes=dict(record.resource_attributes))


@pytest.mark.parametrize("seed", range(4))
def test_quirks_process_fixes_as_call_does(seed: int) -> None:
    rng = random.Random(seed)
    records = [quirk_record(rng) for _ in range(300)]
    expected = [Quirks()(clone(r)) for r in records]
    got = Quirks().process([clone(r) for r in records])
    assert got == expected
    assert sum(q.QUIRKS_ATTRIBUTE in r.attributes for r in got) > 15  # the quirks do apply to some


def test_quirks_process_tries_no_fix_on_spans_of_other_producers() -> None:
    """OpenAI chat spans that are not OpenLIT's (nor from openai-v2's scope) are concerned by no quirk."""
    tried: list[str] = []

    def counting(quirk: q.Quirk) -> q.Quirk:
        def fix(record: SpanRecord) -> str | None:
            tried.append(quirk.name)
            return quirk.fix(record)
        return dataclasses.replace(quirk, fix=fix)

    stage = Quirks(tuple(map(counting, QUIRKS)))
    plain = [span_record(provider="openai", operation="chat", attributes={"gen_ai.usage.input_tokens": "5"},
                         resource_attributes={"telemetry.sdk.name": "opentelemetry"}) for _ in range(5)]
    stage.process(plain)
    assert tried == []
    openlit = span_record(provider="openai", operation="chat", attributes={"telemetry.sdk.name": "openlit"})
    stage.process([*plain, openlit])
    assert tried == ["openlit_openai_estimate"]
    assert openlit.attributes[q.QUIRKS_ATTRIBUTE] == "openlit_openai_estimate"


@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda quirk: quirk.name)
def test_concerns_holds_wherever_the_fix_applies(quirk: q.Quirk) -> None:
    """``concerns`` lets process skip a fix: it must hold for every span the fix changes or names."""
    rng = random.Random(11)
    applied = 0
    for _ in range(2000):
        record = quirk_record(rng)
        if quirk.fix(clone(record)) is not None:
            applied += 1
            assert quirk.concerns(record.provider, record.operation, record.scope_name, q.openlit_sdk(record)), record
    assert applied > 20


# --- ScrubNames ---------------------------------------------------------------------------------------

NAME_VALUES = ["gpt-4o", "claude-sonnet-4-5-20250929", "checkout-assistant", "acme", "",
               "svc:" + SECRETS["github_token"], SECRETS["openai_key"], "card " + SECRETS["credit_card"],
               "chat " + SECRETS["anthropic_key"], "x" * 300 + SECRETS["aws_access_key"]]


def scrub_record(rng: random.Random) -> SpanRecord:
    provider_raw = rng.choice(["openai", "OpenAI", SECRETS["aws_access_key"], "custom-provider-name"])
    return span_record(span_name=rng.choice(NAME_VALUES), service_name=rng.choice(NAME_VALUES),
                       tenant=rng.choice(NAME_VALUES[:6]), request_model=rng.choice(NAME_VALUES),
                       response_model=rng.choice(NAME_VALUES), provider=provider_raw.lower(),
                       operation=rng.choice(["chat", "chat"]),
                       attributes={"gen_ai.provider.name": provider_raw, "gen_ai.operation.name": "chat"})


def _redactions(metrics: Metrics) -> list[str]:
    return sorted(line for line in generate_latest(metrics.registry).decode().splitlines()
                  if line.startswith("llm_redactions_total{"))


@pytest.mark.parametrize("seed", range(4))
def test_scrub_process_replaces_and_counts_as_call_does(seed: int) -> None:
    rng = random.Random(seed)
    records = [scrub_record(rng) for _ in range(200)]
    one, batch = Metrics(), Metrics()
    stage = ScrubNames(one)
    expected = [stage(clone(r)) for r in records]
    got = ScrubNames(batch).process([clone(r) for r in records])
    assert got == expected
    assert _redactions(batch) == _redactions(one)
    assert got != records and len(_redactions(one)) >= 3  # secrets were found and replaced


def test_a_failing_scrub_batch_changes_and_counts_nothing() -> None:
    """The chain re-runs a failed batch span by span: what the batch did before failing must not show twice."""
    rng = random.Random(5)
    records = [scrub_record(rng) for _ in range(100)]
    metrics = Metrics()
    calls = [0]

    class Failing(ScrubNames):
        __slots__ = ()

        def _decide(self, record: SpanRecord) -> Any:
            calls[0] += 1
            if calls[0] == 10:
                raise RuntimeError("bug")
            return super()._decide(record)

    stage = Failing(metrics)
    before = [clone(r) for r in records]
    with pytest.raises(RuntimeError):
        stage.process(records)
    assert calls[0] == 10 and records == before and _redactions(metrics) == []


# --- Price with columns, and the whole chain ---------------------------------------------------------

SEARCH = "gen_ai.usage.web_search_requests"
"""A usage attribute pricing reads (the testdata catalog has no web-search price: such a span is 'partial')."""
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5-20250929"),
          ("openai", "no-such-model"), ("anthropic", "claude-3-5-haiku-latest")]


def request(rng: random.Random, spans: int, pricing_key: bool) -> bytes:
    out = []
    for _ in range(spans):
        provider, model = rng.choice(MODELS)
        attrs: dict[str, Any] = dict(genai_attributes(model=model, provider=provider,
                                                      input_tokens=rng.randrange(0, 5000),
                                                      output_tokens=rng.choice([0, 7, 300]),
                                                      cache_read=rng.choice([0, 0, 40])))
        if pricing_key and rng.random() < 0.3:
            attrs[SEARCH] = 1
        if rng.random() < 0.1:
            attrs["gen_ai.operation.name"] = "invoke_agent"  # not an LLM call
        if rng.random() < 0.05:
            attrs["gen_ai.usage.output_tokens"] = "1.5"  # rejected
        if rng.random() < 0.1:
            attrs["gen_ai.request.model"] = SECRETS["openai_key"]
        if rng.random() < 0.2:
            attrs["telemetry.sdk.name"] = "openlit"
            attrs["gen_ai.client.token.usage"] = attrs["gen_ai.usage.input_tokens"] + attrs[
                "gen_ai.usage.output_tokens"] if isinstance(attrs["gen_ai.usage.output_tokens"], int) else 0
        out.append(make_span(attrs, trace_id=os.urandom(16), span_id=os.urandom(8)))
    return make_request(out, {"service.name": "svc"}).SerializeToString()


class Grow:
    """A stage that adds a pricing attribute to some records after decoding (their rows no longer describe
    them, so Price must probe their dicts itself)."""

    def __init__(self, rng: random.Random, share: float) -> None:
        self.rng, self.share = rng, share

    def __call__(self, record: SpanRecord) -> SpanRecord:
        if self.rng.random() < self.share:
            record.attributes[SEARCH] = "1"
        return record


def stages(metrics: Metrics, grow: float, seed: int) -> list[Any]:
    return [Detect(), u.ExtractUsage(), Grow(random.Random(seed), grow), Quirks(), ScrubNames(metrics),
            Price(lambda: CATALOG)]


def _fields(records: list[SpanRecord]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, f.name) for f in dataclasses.fields(r)) for r in records]


@pytest.mark.parametrize("pricing_key", [False, True], ids=["plain request", "pricing key in the request"])
@pytest.mark.parametrize("seed", range(4))
def test_chain_with_columns_gives_the_per_record_result(seed: int, pricing_key: bool) -> None:
    payload = request(random.Random(seed), 150, pricing_key)
    results = []
    for batched in (False, True):
        records, columns = wire_scanned(payload)
        metrics = Metrics()
        transforms = stages(metrics, 0.2, seed)
        rejected: list[str] = []
        if batched:
            kept = Chain(transforms).process(records, lambda reason, _, out=rejected: out.append(reason), None,
                                             columns).records
        else:
            kept = []
            for record in records:
                try:
                    for transform in transforms:
                        record = transform(record)
                except Drop as drop:
                    if drop.reason != "not_llm":
                        rejected.append(drop.reason)
                    continue
                kept.append(record)
        results.append((_fields(kept), sorted(rejected), _redactions(metrics)))
    assert results[1] == results[0]
    kept = results[0][0]
    statuses = {row[[f.name for f in dataclasses.fields(SpanRecord)].index("pricing_status")] for row in kept}
    assert {"priced", "partial", "unpriced"} <= statuses, statuses  # both engines and the unpriced path ran
    assert results[0][1] and results[0][2]  # spans were rejected and secrets counted


def test_price_probes_the_dicts_the_columns_do_not_describe() -> None:
    """A record whose dict grew after decoding (here with a pricing attribute) is not described by its row:
    reading the row would price it as a plain span, without the attribute."""
    records, columns = wire_scanned(request(random.Random(1), 40, pricing_key=False))
    records = [u.ExtractUsage()(r) for r in records if "invoke_agent" not in r.attributes.values()
               and r.attributes.get("gen_ai.usage.output_tokens") != "1.5"]
    for record in records[::2]:
        record.attributes[SEARCH] = "1"
    expected = [Price(lambda: CATALOG)(clone(r)) for r in records]
    got = Price(lambda: CATALOG).process(records, columns)
    assert _fields(got) == _fields(expected)
    assert any(r.pricing_status == "partial" for r in got)


def test_reported_cost_is_parsed_as_decimal() -> None:
    """(The general reader keeps the reported cost exact: 0.0125 USD is 12,500,000,000 pico-USD.)"""
    r = u.ExtractUsage()(span_record(attributes={"gen_ai.usage.cost": "0.0125", "gen_ai.usage.input_tokens": "1"}))
    assert r.reported_cost_pusd == int(Decimal("0.0125") * 10**12)
