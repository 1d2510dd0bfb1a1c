"""Parse and solve one task batch into an :class:`Outcome`, and the metrics of doing so.

Shared by the schedules API of ``run`` and the Kafka ``scheduler`` worker, so a batch is read with the
same inputs (:class:`~llm_cost_tracker.services.schedule_inputs.TrackerInputs`) and solved with the same
budget and seed (from the batch id: a batch solved twice gives the same schedule) on both paths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric

from llm_cost_tracker.config import SchedulerConfig
from llm_cost_tracker.scheduler.batch import TaskBatch, check_budget, parse_batch
from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError
from llm_cost_tracker.scheduler.inputs import PlanInputs
from llm_cost_tracker.scheduler.report import annotate_plan, to_json
from llm_cost_tracker.scheduler.solve import Scheduler, SolveSettings
from llm_cost_tracker.services.schedule_outcome import Outcome

__all__ = ["EngineMetrics", "ScheduleMetrics", "batch_tenant", "parse", "seed_for", "solve_budget", "solve_parsed", "solve_text"]


class ScheduleMetrics:
    """Counters of the worker and of the schedules API, on ``registry`` (plus the engine's, bridged)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter("llm_cost_schedule_batches_total",
                               "Task batches answered, by source (kafka, api) and status "
                               "(done, error, infeasible, cancelled).", ["source", "status"], registry=registry)
        self.reused = Counter("llm_cost_schedule_redelivered_total",
                              "Redelivered batches answered from the stored result without solving again.",
                              registry=registry)
        self.published = Counter("llm_cost_schedule_results_published_total",
                                 "Results acknowledged by the broker on the results topic.", registry=registry)
        self.in_progress = Gauge("llm_cost_schedule_in_progress", "Batches being solved now.", registry=registry)
        registry.register(EngineMetrics())


class EngineMetrics:
    """Collector re-exporting the engine's metrics (``llm_cost_scheduler_*`` in the default registry).

    ``scheduler/metrics.py`` registers breaker state, fallbacks, solves and solve time in
    prometheus_client's default registry; the service's /metrics serves its own registry, so this
    bridge adds those families to it.
    """

    def collect(self) -> Iterator[Metric]:
        import llm_cost_tracker.scheduler.metrics  # noqa: F401 - registers the families

        for family in REGISTRY.collect():
            if family.name.startswith("llm_cost_scheduler_"):
                yield family

    def describe(self) -> list[Metric]:
        return []  # collected lazily: no name clash checks against the engine's module-level metrics


def seed_for(batch_id: str) -> int:
    """A seed from the batch id, so a batch solved twice (redelivery) gives the same schedule."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:4], "big")


def solve_budget(settings: SchedulerConfig, batch_id: str) -> SolveSettings:
    return SolveSettings(max_schedules=settings.scheduler_max_schedules,
                         time_limit=settings.scheduler_time_limit_seconds, seed=seed_for(batch_id))


def batch_tenant(text: str) -> str | None:
    """The ``tenant`` a batch names for its prices, spans and budgets (None: none, or not readable here).

    Only trusted callers may name one: the Kafka worker's producers and admin tokens of the API.
    """
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    tenant = doc.get("tenant") if isinstance(doc, dict) else None
    return tenant if isinstance(tenant, str) and tenant else None


def parse(text: str, source: str, inputs: PlanInputs | None = None) -> TaskBatch:
    """Parse a task batch with the tracker's ``inputs`` (None: bundled catalog, nothing measured).

    ``ParseError``/``InfeasibleError`` propagate, and ``InputsUnavailable`` when the store cannot be read.
    """
    batch = parse_batch(text, source=source, inputs=inputs)
    check_budget(batch)
    return batch


def solve_parsed(batch: TaskBatch, scheduler: Scheduler, settings: SchedulerConfig, base: Outcome) -> Outcome:
    """Solve a parsed batch through ``scheduler`` (breaker + greedy fallback) into an Outcome."""
    try:
        result = scheduler.solve_batch(batch, solve_budget(settings, base.batch_id))
    except InfeasibleError as exc:
        return _with(base, status="infeasible", name=batch.name, error=f"infeasible: {exc}")
    if not result.success or result.schedule is None:
        return _with(base, status="infeasible", name=batch.name, error=f"infeasible: {result.message}")
    doc = annotate_plan(to_json(batch.problem, result), batch, base.batch_id)
    return _with(base, status="done", name=batch.name, result=doc)


def solve_text(text: str, scheduler: Scheduler, settings: SchedulerConfig, base: Outcome,
               inputs: PlanInputs | None = None) -> Outcome:
    """Parse and solve; a malformed batch gives an ``error`` outcome naming its line."""
    try:
        batch = parse(text, f"batch {base.batch_id}", inputs)
    except ParseError as exc:
        return _with(base, status="error", error=str(exc))
    except InfeasibleError as exc:
        return _with(base, status="infeasible", error=f"infeasible: {exc}")
    return solve_parsed(batch, scheduler, settings, base)


def _with(base: Outcome, **changes: Any) -> Outcome:
    return replace(base, solved_at=datetime.now(UTC), **changes)
