"""llm-cost-tracker: what your LLM calls cost, from their OpenTelemetry spans."""

from llm_cost_tracker.types import PICO_PER_USD, Drop, SpanRecord, TokenUsage, Transform

__all__ = ["PICO_PER_USD", "Drop", "SpanRecord", "TokenUsage", "Transform"]
__version__ = "0.1.0"
