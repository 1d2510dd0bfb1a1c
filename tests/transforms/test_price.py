"""Pricing spans: attributes are handed to the catalog only when they hold something it reads."""

from __future__ import annotations

import random
import time
from typing import Any

from llm_cost_tracker.pricing import PriceCatalog
from llm_cost_tracker.testing import genai_attributes, span_record
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import PRICING_ATTRIBUTES, Price
from llm_cost_tracker.transforms.usage import ExtractUsage
from llm_cost_tracker.types import SpanRecord


class KeySpy(dict):  # type: ignore[type-arg]
    """A dict that records every key it is asked for, however it is asked."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[object] = set()

    def get(self, key: object, default: object = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: object) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(key)
        return super().__contains__(key)

    def __iter__(self) -> Any:
        self.asked.add("<iterated>")
        return super().__iter__()

    def items(self) -> Any:
        self.asked.add("<iterated>")
        return super().items()


def span(attrs: dict[str, object]) -> SpanRecord:
    text = {k: str(v) for k, v in attrs.items()}
    return ExtractUsage()(Detect()(span_record(start_time_ns=time.time_ns(), attributes=text)))


def test_quote_reads_no_attribute_outside_pricing_attributes() -> None:
    """PriceCatalog.quote looks up only PRICING_ATTRIBUTES keys (never iterates), so leaving the attributes out of
    a span that has none of them cannot change its price. Fails when pricing starts reading another key."""
    catalog = PriceCatalog.load()
    rng = random.Random(3)
    for model, provider in (("gpt-4o", "openai"), ("claude-sonnet-4-5-20250929", "anthropic"),
                            ("gemini-2.5-pro", "gcp.gemini")):
        for _ in range(20):
            record = span(genai_attributes(model=model, provider=provider, input_tokens=rng.randrange(1, 10**6),
                                           cache_read=rng.randrange(0, 1000), cache_write=rng.randrange(0, 1000),
                                           reasoning=rng.randrange(0, 100)))
            spy = KeySpy(record.attributes)
            spy.update({key: "1" for key in PRICING_ATTRIBUTES})  # present, so every lookup happens
            catalog.quote(provider=provider, model=model, at_ns=record.start_time_ns, usage=record.usage,
                          attributes=spy, tenant="")
            assert spy.asked <= PRICING_ATTRIBUTES, spy.asked - PRICING_ATTRIBUTES


def test_price_is_the_same_with_or_without_the_shortcut() -> None:
    """Spans without pricing attributes cost what the catalog quotes with their attributes; a service tier or a
    1-hour cache write count still changes the price (those attributes are handed over)."""
    catalog = PriceCatalog.load()
    price = Price(lambda: catalog)
    for attrs in (genai_attributes(model="gpt-4o", cache_read=300),
                  genai_attributes(model="claude-sonnet-4-5-20250929", provider="anthropic", cache_write=500),
                  {**genai_attributes(model="gpt-5", input_tokens=10_000), "openai.response.service_tier": "flex"},
                  {**genai_attributes(model="claude-sonnet-4-5-20250929", provider="anthropic", cache_write=500),
                   "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens": 400}):
        record = span(attrs)
        expected = catalog.quote(provider=record.provider, model=record.response_model, at_ns=record.start_time_ns,
                                 usage=record.usage, attributes=record.attributes)
        assert expected is not None
        price(record)
        assert (record.cost_pusd, record.pricing_model, record.price_version) == (
            expected.cost_pusd, expected.pricing_model, expected.price_version)
    plain = span(genai_attributes(model="gpt-5", input_tokens=10_000))
    flex = span({**genai_attributes(model="gpt-5", input_tokens=10_000), "openai.response.service_tier": "flex"})
    price(plain)
    price(flex)
    assert flex.cost_pusd is not None and plain.cost_pusd is not None and flex.cost_pusd < plain.cost_pusd


_CATALOG = PriceCatalog.load()


def test_unknown_model_with_reported_cost_is_reported_when_the_fallback_is_on() -> None:
    """[pricing] reported_cost_fallback: an unknown model takes the producer's cost, status 'reported'."""
    attrs = {**genai_attributes("totally-unknown-model-x", "openai", 10, 10), "gen_ai.usage.cost": "0.0123"}
    off = Price(lambda: _CATALOG)(span(attrs))
    assert off.pricing_status == "unpriced" and off.cost_pusd is None and off.reported_cost_pusd == 12_300_000_000
    on = Price(lambda: _CATALOG, reported_cost_fallback=True)(span(attrs))
    assert on.pricing_status == "reported" and on.cost_pusd == 12_300_000_000


def test_a_reported_cost_of_zero_is_unknown_not_free() -> None:
    """OpenLIT's offline gen_ai.usage.cost = 0 is cleared: not stored as a reported $0, never used as a price."""
    attrs = {**genai_attributes("totally-unknown-model-x", "openai", 10, 10), "gen_ai.usage.cost": "0"}
    record = Price(lambda: _CATALOG, reported_cost_fallback=True)(span(attrs))
    assert record.reported_cost_pusd is None
    assert record.pricing_status == "unpriced" and record.cost_pusd is None


def test_a_span_with_an_unpriced_dimension_is_partial_and_names_it() -> None:
    """gpt-4o has no web-search price: the span is 'partial', the attribute names per_search, the tokens are priced."""
    attrs = {**genai_attributes("gpt-4o", "openai", 100, 100), "gen_ai.usage.web_search_requests": "1"}
    record = Price(lambda: _CATALOG)(span(attrs))
    assert record.pricing_status == "partial"
    assert record.attributes["llm_cost_tracker.pricing.missing"] == "per_search"
    assert record.cost_pusd == Price(lambda: _CATALOG)(span(genai_attributes("gpt-4o", "openai", 100, 100))).cost_pusd


def test_gpt_image_1_span_is_priced_as_image_output() -> None:
    """The GenAI span of a gpt-image-1 call (50 in, 4,160 out) is priced $0.16665."""
    record = Price(lambda: _CATALOG)(span(genai_attributes("gpt-image-1", "openai", 50, 4160)))
    assert record.pricing_status == "priced" and record.cost_pusd == 166_650_000_000
