"""Prometheus metrics of the scheduler: breaker state, fallbacks, solves and budget used."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BREAKER_STATE = Gauge(
    "llm_cost_scheduler_breaker_state",
    "Circuit breaker around the optimizer: 0 closed, 1 open, 2 half-open.",
)
FALLBACKS = Counter(
    "llm_cost_scheduler_fallbacks_total",
    "Batches answered by the greedy fallback instead of the optimizer, by reason.",
    ["reason"],
)
SOLVES = Counter(
    "llm_cost_scheduler_solves_total",
    "Solves by outcome (optimized, fallback, infeasible, failed).",
    ["outcome"],
)
SCHEDULES = Counter(
    "llm_cost_scheduler_schedules_evaluated_total",
    "Schedules decoded by the optimizer (each justification pass counted).",
)
SOLVE_SECONDS = Histogram(
    "llm_cost_scheduler_solve_seconds",
    "Wall time of one solve including any fallback.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
