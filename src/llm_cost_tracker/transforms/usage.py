"""Read provider, model, operation and token usage from any supported dialect.

Dialects, tried in this order for each field (see ``docs/dialects.md``):

- ``genai``: current OpenTelemetry GenAI conventions (``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.usage.cache_read.input_tokens`` ...).
- ``genai_legacy``: older GenAI conventions and OpenLLMetry (``gen_ai.system``,
  ``gen_ai.usage.prompt_tokens``, ``gen_ai.usage.cache_read_input_tokens``, ``llm.usage.*``).
- ``openinference``: Arize OpenInference (``llm.model_name``, ``llm.provider``,
  ``llm.token_count.*``).

Cached tokens: every dialect above counts them *inside* the input total (GenAI conventions say
so; OpenLLMetry adds Anthropic's separate counts together; OpenInference's ``prompt_details`` are a
breakdown of ``llm.token_count.prompt``). One guard: when cache reads plus writes exceed the input
total, the producer evidently sent Anthropic's raw ``input_tokens`` (which exclude the cache), and
the input total is taken as their sum. Reasoning tokens are inside the output count everywhere.
"""

from __future__ import annotations

from decimal import Decimal

from llm_cost_tracker.types import PICO_PER_USD, Drop, SpanRecord, TokenUsage

INVALID_TOKENS = "invalid_token_count"

# (dialect, key) in priority order, per field
_INPUT = (("genai", "gen_ai.usage.input_tokens"), ("genai_legacy", "gen_ai.usage.prompt_tokens"),
          ("genai_legacy", "llm.usage.prompt_tokens"), ("openinference", "llm.token_count.prompt"))
_OUTPUT = (("genai", "gen_ai.usage.output_tokens"), ("genai_legacy", "gen_ai.usage.completion_tokens"),
           ("genai_legacy", "llm.usage.completion_tokens"), ("openinference", "llm.token_count.completion"))
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
               "llm.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                "llm.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
              "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_OPERATION = ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind")
_REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name")
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model")
_REPORTED_COST = ("gen_ai.usage.cost", "llm.cost.total", "llm.usage.cost", "gen_ai.usage.cost_usd")

MAX_TOKENS = 10**9
"""A billion tokens in one call is implausible; the bound keeps every cost inside int64 pico-USD."""


def parse_token_count(key: str, text: str) -> int:
    """A token count from its attribute text; raises ``Drop`` when negative or not an integer."""
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise Drop(INVALID_TOKENS) from None
        if not as_float.is_integer():
            raise Drop(INVALID_TOKENS) from None
        value = int(as_float)
    if value < 0 or value > MAX_TOKENS:
        raise Drop(INVALID_TOKENS)
    return value


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return ""


def _count(attrs: dict[str, str], keys: tuple[str, ...]) -> int:
    for key in keys:
        text = attrs.get(key)
        if text is not None:
            return parse_token_count(key, text)
    return 0


MAX_REPORTED_USD = Decimal(2**63 - 1) / PICO_PER_USD
"""About 9.2 million USD: larger reported costs are unusable (the stored pico-USD is an int64)."""


def parse_reported_cost(text: str) -> int | None:
    """A vendor-reported USD cost as pico-USD, or None when absent or unusable."""
    try:
        value = Decimal(text)
        if not value.is_finite() or value < 0 or value > MAX_REPORTED_USD:
            return None
        return int((value * PICO_PER_USD).to_integral_value())
    except ArithmeticError:  # InvalidOperation, and Overflow for exponents like 1E+999999999
        return None


class ExtractUsage:
    """Transform: fills provider, model, operation, dialect and :class:`TokenUsage`."""

    __slots__ = ()

    def __call__(self, record: SpanRecord) -> SpanRecord:
        attrs = record.attributes
        dialect = ""
        input_tokens = output_tokens = 0
        for name, key in _INPUT:
            text = attrs.get(key)
            if text is not None:
                input_tokens = parse_token_count(key, text)
                dialect = name
                break
        for name, key in _OUTPUT:
            text = attrs.get(key)
            if text is not None:
                output_tokens = parse_token_count(key, text)
                dialect = dialect or name
                break
        cache_read = _count(attrs, _CACHE_READ)
        cache_write = _count(attrs, _CACHE_WRITE)
        reasoning = _count(attrs, _REASONING)
        if cache_read + cache_write > input_tokens:
            input_tokens += cache_read + cache_write
        if reasoning > output_tokens:
            output_tokens += reasoning
        if not dialect:
            dialect = "openinference" if "llm.model_name" in attrs else "genai"
        record.dialect = dialect
        record.provider = _first(attrs, _PROVIDER).lower()
        record.operation = _first(attrs, _OPERATION).lower()
        record.request_model = _first(attrs, _REQUEST_MODEL)
        record.response_model = _first(attrs, _RESPONSE_MODEL)
        record.usage = TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning)
        reported = _first(attrs, _REPORTED_COST)
        if reported:
            record.reported_cost_pusd = parse_reported_cost(reported)
        return record
