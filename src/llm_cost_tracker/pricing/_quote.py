"""One span's cost: the :class:`Quote` and the exact arithmetic behind it.

The arithmetic is pure integer maths over a resolved :class:`RateCard`: every dimension's amount in
femto-USD, summed, then rounded once (half to even) to pico-USD. The per-dimension ``breakdown`` is
rounded dimension by dimension for display, so its sum can differ from ``cost_pusd`` by a few pico-USD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from llm_cost_tracker.pricing._model import RateCard
from llm_cost_tracker.pricing._money import femto_to_pico, scale_femto
from llm_cost_tracker.types import NO_DETAIL, TokenUsage, UsageDetail

# Service tier of a span, most specific first: the tier that served the response, then the one asked
# for. ``openai.*`` is the current GenAI semantic convention, ``gen_ai.openai.*`` the older one.
TIER_ATTRIBUTES = (
    "llm_cost_tracker.service_tier",
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "gen_ai.response.service_tier",
    "anthropic.response.service_tier",
    "anthropic.usage.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
    "gen_ai.request.service_tier",
)
_TIER_VALUES = {
    "default": "standard",
    "auto": "standard",
    "standard": "standard",
    "standard_only": "standard",
    "on_demand": "standard",
    "scale": "standard",
    "flex": "flex",
    "priority": "priority",
    "batch": "batch",
    "batches": "batch",
}

# Counts a span can carry in attributes beyond the text token counts, most specific key first (docs/dialects.md
# lists which dialect sends which). A TokenUsage field that is already set wins over its attributes.
CACHE_WRITE_1H_ATTRIBUTES = (
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
)
INPUT_AUDIO_ATTRIBUTES = ("gen_ai.usage.input_audio_tokens", "llm.token_count.prompt_details.audio",
                          "llm_cost_tracker.usage.input_audio_tokens")
OUTPUT_AUDIO_ATTRIBUTES = ("gen_ai.usage.output_audio_tokens", "llm.token_count.completion_details.audio",
                           "llm_cost_tracker.usage.output_audio_tokens")
INPUT_IMAGE_ATTRIBUTES = ("gen_ai.usage.input_image_tokens", "llm.token_count.prompt_details.image",
                          "llm_cost_tracker.usage.input_image_tokens")
OUTPUT_IMAGE_ATTRIBUTES = ("gen_ai.usage.output_image_tokens", "llm.token_count.completion_details.image",
                           "llm_cost_tracker.usage.output_image_tokens")
INPUT_SECONDS_ATTRIBUTES = ("llm_cost_tracker.usage.input_seconds", "gen_ai.usage.input_seconds",
                            "gen_ai.usage.input_audio_seconds")
OUTPUT_SECONDS_ATTRIBUTES = ("llm_cost_tracker.usage.output_seconds", "gen_ai.usage.output_seconds",
                             "gen_ai.usage.output_video_seconds")
INPUT_CHARACTERS_ATTRIBUTES = ("llm_cost_tracker.usage.input_characters", "gen_ai.usage.input_characters")
OUTPUT_CHARACTERS_ATTRIBUTES = ("llm_cost_tracker.usage.output_characters", "gen_ai.usage.output_characters")
INPUT_IMAGES_ATTRIBUTES = ("llm_cost_tracker.usage.input_images", "gen_ai.usage.input_images")
OUTPUT_IMAGES_ATTRIBUTES = ("llm_cost_tracker.usage.output_images", "gen_ai.usage.output_images")
SEARCH_ATTRIBUTES = ("llm_cost_tracker.usage.search_requests", "gen_ai.usage.web_search_requests",
                     "gen_ai.usage.server_tool_use.web_search_requests",
                     "anthropic.usage.server_tool_use.web_search_requests")

_COUNT_FIELDS = (
    ("input_audio_tokens", INPUT_AUDIO_ATTRIBUTES),
    ("output_audio_tokens", OUTPUT_AUDIO_ATTRIBUTES),
    ("input_image_tokens", INPUT_IMAGE_ATTRIBUTES),
    ("output_image_tokens", OUTPUT_IMAGE_ATTRIBUTES),
    ("input_characters", INPUT_CHARACTERS_ATTRIBUTES),
    ("output_characters", OUTPUT_CHARACTERS_ATTRIBUTES),
    ("input_images", INPUT_IMAGES_ATTRIBUTES),
    ("output_images", OUTPUT_IMAGES_ATTRIBUTES),
    ("search_requests", SEARCH_ATTRIBUTES),
)
_DURATION_FIELDS = (("input_duration_ms", INPUT_SECONDS_ATTRIBUTES), ("output_duration_ms", OUTPUT_SECONDS_ATTRIBUTES))
USAGE_ATTRIBUTES = CACHE_WRITE_1H_ATTRIBUTES + tuple(k for _, keys in _COUNT_FIELDS + _DURATION_FIELDS for k in keys)
"""Every attribute key read for a count (see ``usage_from_attributes``)."""
_MAX_COUNT = 10**12
"""Counts (and milliseconds) above this are not believed: it keeps every amount inside int64 pico-USD."""
IMAGE_OUTPUT_MODES = frozenset({"image_generation", "image_edit"})
"""Entry modes whose output tokens are image tokens (gpt-image-1 bills every output token as an image token)."""


def service_tier_from(attributes: Mapping[str, object] | None) -> str:
    """The catalog service tier named by a span's attributes (``standard`` when none or unknown)."""
    if not attributes:
        return "standard"
    for key in TIER_ATTRIBUTES:
        value = attributes.get(key)
        if value:
            return _TIER_VALUES.get(str(value).strip().lower(), "standard")
    return "standard"


def _count(attributes: Mapping[str, object] | None, keys: tuple[str, ...]) -> int:
    if not attributes:
        return 0
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            try:
                count = int(str(value))
            except ValueError:
                continue
            return min(max(count, 0), _MAX_COUNT)
    return 0


def _milliseconds(attributes: Mapping[str, object], keys: tuple[str, ...]) -> int:
    """Whole milliseconds from a seconds attribute (``"12.5"`` -> 12500), 0 when absent or unusable."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            try:
                seconds = Decimal(str(value))
                if not seconds.is_finite() or seconds <= 0:
                    return 0
                return min(int((seconds * 1000).to_integral_value()), _MAX_COUNT)
            except ArithmeticError:
                continue
    return 0


def usage_from_attributes(usage: TokenUsage, attributes: Mapping[str, object] | None) -> TokenUsage:
    """``usage`` with every detail count it leaves at 0 read from the span's attributes (when they carry it)."""
    if not attributes:
        return usage
    detail = usage.detail
    found: dict[str, int] = {}
    for name, keys in _COUNT_FIELDS:
        if not getattr(detail, name):
            count = _count(attributes, keys)
            if count:
                found[name] = count
    for name, keys in _DURATION_FIELDS:
        if not getattr(detail, name):
            ms = _milliseconds(attributes, keys)
            if ms:
                found[name] = ms
    return replace(usage, detail=replace(detail, **found)) if found else usage


@dataclass(frozen=True, slots=True)
class Extras:
    """How to read a span's usage beyond :class:`TokenUsage`: 1-hour cache writes (a subset of cache
    writes) and whether its output tokens are image tokens (the entry's mode says so)."""

    cache_write_1h: int = 0
    image_output: bool = False

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, object] | None, image_output: bool = False) -> Extras:
        """Read the extra counts a span's attributes carry (see the ``*_ATTRIBUTES`` tuples)."""
        if not attributes:
            return IMAGE_EXTRAS if image_output else NO_EXTRAS
        return cls(cache_write_1h=_count(attributes, CACHE_WRITE_1H_ATTRIBUTES), image_output=image_output)


NO_EXTRAS = Extras()
IMAGE_EXTRAS = Extras(image_output=True)


class Quote(NamedTuple):
    """What one span cost, and which price produced it.

    ``breakdown`` maps each priced dimension to pico-USD at list price; a negotiated discount shows
    as a negative ``discount`` item. ``fallbacks`` lists rates the data did not have (see
    docs/pricing.md); ``match`` says how the model name was resolved. A NamedTuple rather than a
    frozen dataclass: equally immutable, and several times cheaper to build on the per-span path.
    """

    pricing_model: str
    price_version: str
    cost_pusd: int
    breakdown: Mapping[str, int]
    service_tier: str = "standard"
    match: str = "exact"
    fallbacks: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    """Dimensions the span used that its entry has no price for: ``cost_pusd`` then covers only the rest,
    and the span is 'partial', never 'priced' (the zero rule)."""


def femto_amounts(card: RateCard, usage: TokenUsage, extras: Extras = NO_EXTRAS) -> dict[str, int]:
    """Each dimension's cost in femto-USD (dimensions without usage left out).

    Input splits into uncached text, cache reads, 5-minute and 1-hour cache writes, audio and image;
    output into text, reasoning, audio and image (all of it image for an image-generation entry unless
    the span says how many are image tokens). Sub-counts are clipped to what their parent count holds.
    A dimension the card cannot price is left out too: :func:`missing_dimensions` names it.
    """
    cache_read = usage.cache_read_tokens
    cache_write = usage.cache_write_tokens
    write_1h = min(extras.cache_write_1h, cache_write)
    left = max(usage.input_tokens - cache_read - cache_write, 0)
    output = usage.output_tokens
    reasoning = min(usage.reasoning_tokens, output)
    amounts: dict[str, int] = {}
    d = usage.detail
    if d is not NO_DETAIL or extras.image_output:
        audio_in = min(d.input_audio_tokens, left)
        left -= audio_in
        image_in = min(d.input_image_tokens, left)
        left -= image_in
        audio_out = min(d.output_audio_tokens, output)
        if extras.image_output and not d.output_image_tokens:
            image_out = output - audio_out
        else:
            image_out = min(d.output_image_tokens, output - audio_out)
        reasoning = min(usage.reasoning_tokens, output - audio_out - image_out)
        output -= audio_out + image_out
        _detail_amounts(amounts, card, d, audio_in, image_in, audio_out, image_out)
    text_out = output - reasoning
    if left:
        amounts["input"] = left * card.input
    if text_out:
        amounts["output"] = text_out * card.output
    if cache_read:
        amounts["cache_read"] = cache_read * card.cache_read
    if cache_write:
        amounts["cache_write"] = (cache_write - write_1h) * card.cache_write
        if write_1h:
            amounts["cache_write_1h"] = write_1h * card.cache_write_1h
    if reasoning:
        amounts["reasoning"] = reasoning * card.reasoning
    if card.per_request:
        amounts["request"] = card.per_request
    return amounts


def _detail_amounts(amounts: dict[str, int], card: RateCard, d: UsageDetail, audio_in: int, image_in: int,
                    audio_out: int, image_out: int) -> None:
    """The audio, image and per-unit amounts of a span with usage beyond text tokens."""
    if audio_in:
        amounts["input_audio"] = audio_in * card.input_audio
    if image_in:
        amounts["input_image"] = image_in * card.input_image
    if audio_out:
        amounts["output_audio"] = audio_out * card.output_audio
    if image_out:
        amounts["output_image"] = image_out * card.output_image
    if d.input_duration_ms:
        amounts["per_input_second"] = scale_femto(d.input_duration_ms * card.per_input_second, 1, 1000)
    if d.output_duration_ms:
        amounts["per_output_second"] = scale_femto(d.output_duration_ms * card.per_output_second, 1, 1000)
    if d.input_characters:
        amounts["per_input_character"] = d.input_characters * card.per_input_character
    if d.output_characters:
        amounts["per_output_character"] = d.output_characters * card.per_output_character
    if d.input_images:
        amounts["per_input_image"] = d.input_images * card.per_input_image
    if d.output_images:
        amounts["per_output_image"] = d.output_images * card.per_output_image
    if d.search_requests:
        amounts["per_search"] = d.search_requests * card.per_search


def missing_dimensions(card: RateCard, amounts: dict[str, int]) -> tuple[str, ...]:
    """The dimensions of ``amounts`` the card has no price for, removed from ``amounts`` (the zero rule)."""
    if card.missing.isdisjoint(amounts):
        return ()
    missing = tuple(dim for dim in amounts if dim in card.missing)
    for dim in missing:
        del amounts[dim]
    return missing


def total_pico(amounts: Mapping[str, int], discount: tuple[int, int] | None) -> tuple[int, int]:
    """``(cost_pusd, discount_pusd)``: the femto sum, discounted exactly, rounded once."""
    femto = sum(amounts.values())
    if discount is None:
        return femto_to_pico(femto), 0
    net = scale_femto(femto, discount[0], discount[1])
    return femto_to_pico(net), femto_to_pico(net) - femto_to_pico(femto)


def breakdown_pico(amounts: Mapping[str, int], discount_pusd: int) -> dict[str, int]:
    """Per-dimension pico-USD for display (each rounded half to even, as ``femto_to_pico``)."""
    out = {}
    for dim, value in amounts.items():  # femto_to_pico, inlined: this runs for every span
        quot, rem = divmod(value, 1000)
        out[dim] = quot + 1 if rem > 500 or (rem == 500 and quot & 1) else quot
    if discount_pusd:
        out["discount"] = discount_pusd
    return out
