"""One span's cost: the :class:`Quote` and the exact arithmetic behind it.

The arithmetic is pure integer maths over a resolved :class:`RateCard`: every dimension's amount in
femto-USD, summed, then rounded once (half to even) to pico-USD. The per-dimension ``breakdown`` is
rounded dimension by dimension for display, so its sum can differ from ``cost_pusd`` by a few pico-USD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from llm_cost_tracker.pricing._model import RateCard
from llm_cost_tracker.pricing._money import femto_to_pico, scale_femto
from llm_cost_tracker.types import TokenUsage

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

# Token counts the TokenUsage record does not carry; each is a subset of input (or output) tokens.
CACHE_WRITE_1H_ATTRIBUTES = (
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
)
INPUT_AUDIO_ATTRIBUTES = ("gen_ai.usage.input_audio_tokens", "llm.token_count.prompt_details.audio")
OUTPUT_AUDIO_ATTRIBUTES = ("gen_ai.usage.output_audio_tokens", "llm.token_count.completion_details.audio")
INPUT_IMAGE_ATTRIBUTES = ("gen_ai.usage.input_image_tokens", "llm.token_count.prompt_details.image")


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
            return max(count, 0)
    return 0


@dataclass(frozen=True, slots=True)
class Extras:
    """Token counts from span attributes beyond :class:`TokenUsage` (all subsets of input/output)."""

    cache_write_1h: int = 0
    input_audio: int = 0
    output_audio: int = 0
    input_image: int = 0

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, object] | None) -> Extras:
        """Read the extra counts a span's attributes carry (see the ``*_ATTRIBUTES`` tuples)."""
        if not attributes:
            return NO_EXTRAS
        return cls(
            cache_write_1h=_count(attributes, CACHE_WRITE_1H_ATTRIBUTES),
            input_audio=_count(attributes, INPUT_AUDIO_ATTRIBUTES),
            output_audio=_count(attributes, OUTPUT_AUDIO_ATTRIBUTES),
            input_image=_count(attributes, INPUT_IMAGE_ATTRIBUTES),
        )


NO_EXTRAS = Extras()


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


def femto_amounts(card: RateCard, usage: TokenUsage, extras: Extras = NO_EXTRAS) -> dict[str, int]:
    """Each dimension's cost in femto-USD (dimensions without tokens left out).

    Input splits into uncached text, cache reads, 5-minute and 1-hour cache writes, audio and image;
    output into text, reasoning and audio. Sub-counts are clipped to what their parent count holds.
    """
    cache_read = usage.cache_read_tokens
    cache_write = usage.cache_write_tokens
    write_1h = min(extras.cache_write_1h, cache_write)
    left = max(usage.input_tokens - cache_read - cache_write, 0)
    audio_in = min(extras.input_audio, left)
    left -= audio_in
    image_in = min(extras.input_image, left)
    left -= image_in
    output = usage.output_tokens
    audio_out = min(extras.output_audio, output)
    reasoning = min(usage.reasoning_tokens, output - audio_out)
    text_out = output - audio_out - reasoning
    amounts = {}
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
    if audio_in:
        amounts["input_audio"] = audio_in * card.input_audio
    if image_in:
        amounts["input_image"] = image_in * card.input_image
    if audio_out:
        amounts["output_audio"] = audio_out * card.output_audio
    if card.per_request:
        amounts["request"] = card.per_request
    return amounts


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
