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
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
                "llm.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
              "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_OPERATION = ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind")
_REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name", "embedding.model_name")
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model")
LOWERED_NAMES = (("provider", _PROVIDER), ("operation", _OPERATION))
"""Record fields stored lower-cased, with the attributes they are read from (in order): what checks them for
secrets must see the value before it was lower-cased (a lower-cased AWS key id is still the key)."""
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


_PLAN_LIMIT = 1024


class _Plan:
    """For one tuple of attribute keys: the keys of each field that are present, in priority order."""

    __slots__ = ("input", "output", "cache_read", "cache_write", "reasoning", "provider", "operation",
                 "request_model", "response_model", "reported_cost", "openinference")

    def __init__(self, keys: tuple[str, ...]) -> None:
        present = set(keys)
        self.input = tuple(p for p in _INPUT if p[1] in present)
        self.output = tuple(p for p in _OUTPUT if p[1] in present)
        self.cache_read, self.cache_write, self.reasoning, self.provider, self.operation, self.request_model, \
            self.response_model, self.reported_cost = (
                tuple(k for k in group if k in present)
                for group in (_CACHE_READ, _CACHE_WRITE, _REASONING, _PROVIDER, _OPERATION, _REQUEST_MODEL,
                              _RESPONSE_MODEL, _REPORTED_COST))
        self.openinference = "llm.model_name" in present or "embedding.model_name" in present


class ExtractUsage:
    """Transform: fills provider, model, operation, dialect and :class:`TokenUsage`.

    Which of the many dialect keys a span has is decided once per tuple of attribute keys (instrumentations
    send the same keys span after span), so a span costs lookups of the keys it has, not of every key tried.
    """

    __slots__ = ("_plans",)

    def __init__(self) -> None:
        self._plans: dict[tuple[str, ...], _Plan] = {}

    def _plan(self, keys: tuple[str, ...]) -> _Plan:
        plan = _Plan(keys)
        if len(self._plans) >= _PLAN_LIMIT:
            self._plans.clear()
        self._plans[keys] = plan
        return plan

    def __call__(self, record: SpanRecord) -> SpanRecord:
        attrs = record.attributes
        keys = tuple(attrs)
        plan = self._plans.get(keys) or self._plan(keys)
        dialect = ""
        input_tokens = output_tokens = cache_read = cache_write = reasoning = 0
        if plan.input:
            dialect, key = plan.input[0]
            input_tokens = parse_token_count(key, attrs[key])
        if plan.output:
            name, key = plan.output[0]
            output_tokens = parse_token_count(key, attrs[key])
            dialect = dialect or name
        if plan.cache_read:
            cache_read = parse_token_count(plan.cache_read[0], attrs[plan.cache_read[0]])
        if plan.cache_write:
            cache_write = parse_token_count(plan.cache_write[0], attrs[plan.cache_write[0]])
        if plan.reasoning:
            reasoning = parse_token_count(plan.reasoning[0], attrs[plan.reasoning[0]])
        if cache_read + cache_write > input_tokens:
            input_tokens += cache_read + cache_write
        if reasoning > output_tokens:
            output_tokens += reasoning
        if not dialect:
            dialect = "openinference" if plan.openinference else "genai"
        record.dialect = dialect
        record.provider = _first(attrs, plan.provider).lower()
        record.operation = _first(attrs, plan.operation).lower()
        record.request_model = _first(attrs, plan.request_model)
        record.response_model = _first(attrs, plan.response_model)
        record.usage = TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning)
        if plan.reported_cost:
            reported = _first(attrs, plan.reported_cost)
            if reported:
                record.reported_cost_pusd = parse_reported_cost(reported)
        return record
