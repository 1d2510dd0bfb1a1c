"""rotel trace processor: forward only LLM spans to llm-cost-tracker.

Keeps a span when it names a model or carries token usage in one of the dialects llm-cost-tracker
reads (the same keys as its detector, llm_cost_tracker.transforms.detect); drops every other span.
Use with ``rotel-agent start --otlp-with-trace-processor genai_only.py``.
"""

MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model", "llm.request.model",
              "llm.model_name", "embedding.model_name")
USAGE_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
              "gen_ai.usage.completion_tokens", "llm.usage.prompt_tokens", "llm.usage.completion_tokens",
              "llm.usage.total_tokens", "llm.token_count.prompt", "llm.token_count.completion")
KEYS = frozenset(MODEL_KEYS + USAGE_KEYS)


def is_llm_span(span) -> bool:
    return any(kv.key in KEYS for kv in span.attributes)


def process_spans(resource_spans) -> None:
    for scope_spans in resource_spans.scope_spans:
        scope_spans.spans = [span for span in scope_spans.spans if is_llm_span(span)]
