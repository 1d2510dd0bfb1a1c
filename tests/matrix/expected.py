"""What each recorded call must cost: list prices of the bundled catalog times the fake provider's usage.

Costs are integer pico-USD. A rate is USD per million tokens, so tokens x rate x 10^6 is pico-USD.
"""

from __future__ import annotations

from decimal import Decimal

from fake_provider import (
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_CACHE_WRITE,
    CHAT_USAGE,
    EMBEDDING_USAGE,
    RESPONSES_USAGE,
)

# list prices, USD per 1M tokens (bundled catalog: openai.json / anthropic.json from LiteLLM 1.110.2)
GPT_4O_MINI = {"input": Decimal("0.15"), "cache_read": Decimal("0.075"), "output": Decimal("0.6")}
EMBEDDING_3_SMALL = {"input": Decimal("0.02")}
SONNET_4_5 = {"input": Decimal(3), "cache_read": Decimal("0.3"), "cache_write": Decimal("3.75"), "output": Decimal(15)}


def pusd(rates: dict[str, Decimal], **tokens: int) -> int:
    total = sum(rates[kind] * n for kind, n in tokens.items())
    return int(total * 10**6)


_cached = CHAT_USAGE["prompt_tokens_details"]["cached_tokens"]  # type: ignore[index]
CHAT = pusd(GPT_4O_MINI, input=CHAT_USAGE["prompt_tokens"] - _cached, cache_read=_cached,  # type: ignore[operator]
            output=CHAT_USAGE["completion_tokens"])  # type: ignore[arg-type]
CHAT_NO_CACHE_COUNT = pusd(GPT_4O_MINI, input=CHAT_USAGE["prompt_tokens"], output=CHAT_USAGE["completion_tokens"])  # type: ignore[arg-type]
"""openai-v2 reports no cached tokens: its cost is an upper bound (the cached part at the input rate)."""
_rcached = RESPONSES_USAGE["input_tokens_details"]["cached_tokens"]  # type: ignore[index]
RESPONSES = pusd(GPT_4O_MINI, input=RESPONSES_USAGE["input_tokens"] - _rcached, cache_read=_rcached,  # type: ignore
                 output=RESPONSES_USAGE["output_tokens"])  # type: ignore[arg-type]
EMBED = pusd(EMBEDDING_3_SMALL, input=EMBEDDING_USAGE["prompt_tokens"])
WRITE = pusd(SONNET_4_5, input=ANTHROPIC_CACHE_WRITE["input_tokens"],
             cache_write=ANTHROPIC_CACHE_WRITE["cache_creation_input_tokens"], output=ANTHROPIC_CACHE_WRITE["output_tokens"])
READ = pusd(SONNET_4_5, input=ANTHROPIC_CACHE_READ["input_tokens"],
            cache_read=ANTHROPIC_CACHE_READ["cache_read_input_tokens"], output=ANTHROPIC_CACHE_READ["output_tokens"])
READ_CACHE_LOST = pusd(SONNET_4_5, input=ANTHROPIC_CACHE_READ["input_tokens"],
                       output=ANTHROPIC_CACHE_READ["output_tokens"])
"""OpenLIT 1.45 drops the cache read of a streamed Anthropic call: nothing in the span shows the 2000 tokens."""

NO_USAGE = ("no_usage", None)
DUP = ("duplicate", None)


def priced(cost: int) -> tuple[str, int]:
    return ("priced", cost)


EXPECTED: dict[str, list[tuple[str, int | None]]] = {
    # scenario -> (pricing_status, cost_pusd) of each LLM span, in the order the spans ended
    "openai_v2": [priced(CHAT_NO_CACHE_COUNT), priced(CHAT_NO_CACHE_COUNT), NO_USAGE, priced(EMBED)],
    "openllmetry_openai": [priced(CHAT), priced(CHAT), NO_USAGE, priced(RESPONSES), priced(EMBED)],
    "anthropic_sdk": [priced(WRITE), priced(READ), priced(READ)],
    "openllmetry_anthropic": [priced(WRITE), DUP, priced(READ), DUP, priced(READ), DUP],
    "openinference_openai": [priced(CHAT), priced(CHAT), NO_USAGE, priced(RESPONSES), priced(EMBED)],
    "openinference_anthropic": [priced(WRITE), DUP, priced(READ), DUP, priced(READ), DUP],
    "openinference_langchain": [priced(CHAT), DUP],
    "openlit": [priced(CHAT), priced(CHAT), NO_USAGE, priced(EMBED), priced(WRITE), priced(READ),
                priced(READ_CACHE_LOST)],
}
"""Every call counted once: a call seen by two instrumentations is one priced span and one duplicate."""
CALLS = {name: sum(1 for status, _ in rows if status != "duplicate") for name, rows in EXPECTED.items()}
TOTAL = {name: sum(cost or 0 for _, cost in rows) for name, rows in EXPECTED.items()}
