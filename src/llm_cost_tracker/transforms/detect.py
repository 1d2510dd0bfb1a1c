"""Keep the spans that are LLM calls; everything else is counted and not stored.

A span is an LLM call when it names a model or carries token usage in one of the dialects we
read, *and* it is not an aggregate span (agent, tool, workflow, chain) whose usage, if any, repeats
its children's: pricing those would count the same tokens twice.
"""

from __future__ import annotations

from llm_cost_tracker.transforms._keyed import Keyed
from llm_cost_tracker.types import Drop, SpanRecord

__all__ = ["AGGREGATE_OPERATIONS", "CALL_KEYS", "KIND_FLAGS", "KIND_KEYS", "MODEL_KEYS", "NOT_LLM", "USAGE_KEYS", "Detect",
           "is_aggregate"]

MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model", "llm.request.model",
              "llm.model_name", "embedding.model_name")
USAGE_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
              "gen_ai.usage.completion_tokens", "llm.usage.prompt_tokens", "llm.usage.completion_tokens",
              "llm.usage.total_tokens", "llm.token_count.prompt", "llm.token_count.completion")
AGGREGATE_OPERATIONS = frozenset({
    "invoke_agent", "create_agent", "execute_tool", "invoke_workflow",  # GenAI conventions
    "workflow", "task", "agent", "tool",  # OpenLLMetry traceloop.span.kind
    "chain", "retriever", "reranker", "guardrail", "evaluator",  # OpenInference span kinds
})
NOT_LLM = "not_llm"
KIND_KEYS = ("gen_ai.operation.name", "traceloop.span.kind", "openinference.span.kind")
"""Keys that may name a span's kind (an aggregate kind drops it)."""
CALL_KEYS = frozenset(MODEL_KEYS + USAGE_KEYS)


def is_aggregate(kind: str) -> bool:
    return kind.lower() in AGGREGATE_OPERATIONS


KIND_FLAGS = tuple((key, is_aggregate) for key in KIND_KEYS)
"""A span with one of these flags (a kind key naming an aggregate) is dropped."""


class Detect:
    """Transform: raises ``Drop("not_llm")`` for spans that are not priced LLM calls."""

    __slots__ = ()
    keyed_keys = CALL_KEYS
    keyed_flags = KIND_FLAGS

    def __call__(self, record: SpanRecord) -> SpanRecord:
        attrs = record.attributes
        for key in KIND_KEYS:
            kind = attrs.get(key)
            if kind is not None and kind.lower() in AGGREGATE_OPERATIONS:
                raise Drop(NOT_LLM)
        for key in MODEL_KEYS:
            if key in attrs:
                return record
        for key in USAGE_KEYS:
            if key in attrs:
                return record
        raise Drop(NOT_LLM)

    def settle(self, records: list[SpanRecord], keyed: Keyed) -> list[bool]:
        """True for the records ``__call__`` passes, decided once per set of keys and flags: a model or usage key,
        and no kind key with an aggregate's value (:data:`KIND_FLAGS`, asked once per distinct value). The others
        are left to ``__call__``, which drops them."""
        passes: dict[int, bool] = {-1: False}
        for mask in set(keyed.masks):
            if mask >= 0:
                present, flags = keyed.present(mask)
                passes[mask] = not present.isdisjoint(CALL_KEYS) and flags.isdisjoint(KIND_FLAGS)
        return list(map(passes.__getitem__, keyed.masks))
