"""Budget gauges for ``/metrics``, computed from the service's cached statuses at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_cost_tracker.budgets._entities import OTHER
from llm_cost_tracker.budgets._monitor import BudgetMonitor
from llm_cost_tracker.budgets._status import Snapshot
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

log = get_logger("budgets")
MAX_ENTITY_SERIES = 100
"""Entities of one per-entity budget with their own series; the rest are summed under ``other``."""
MAX_VALUE_CHARS = 256


class BudgetCollector(Collector):
    """``llm_budget_*`` gauges labelled by budget (nothing for a scrape when the store cannot be read).

    Per-entity budgets export their tracked entities under an ``entity`` label, at most
    :data:`MAX_ENTITY_SERIES` per budget (the biggest spenders; values over 256 characters never), and
    the rest summed under ``entity="other"``: label values are bounded, and they are the stored (redacted)
    values, never a secret.

    Args:
        service: the budget service whose statuses are exported.
        monitor: the background monitor (anomaly scores, webhook counts), if any.
    """

    def __init__(self, service: BudgetService, monitor: BudgetMonitor | None = None) -> None:
        self._service = service
        self._monitor = monitor

    def describe(self) -> list[Metric]:
        """The families, without samples (no store read): registered by name, so a scrape restricted to other
        names (``/metrics?name[]=...``) neither collects them nor reads the budgets' spend."""
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        try:
            snap: Snapshot | None = self._service.snapshot()
        except StoreUnavailable as exc:
            log.warning("budget gauges skipped: store unavailable", error=str(exc)[:300])
            snap = None
        return self._families(snap)

    def _families(self, snap: Snapshot | None) -> Iterator[Metric]:
        statuses = snap.statuses if snap is not None else {}
        limit = GaugeMetricFamily("llm_budget_limit_usd", "Budget limit for the current period, in USD.",
                                  labels=("budget",))
        spent = GaugeMetricFamily("llm_budget_spent_usd",
                                  "Spend in the budget's current period (store + accepted, not yet stored), USD.",
                                  labels=("budget",))
        projected = GaugeMetricFamily("llm_budget_projected_usd",
                                      "End-of-period spend forecast from the recent burn rate, in USD.",
                                      labels=("budget",))
        remaining = GaugeMetricFamily("llm_budget_remaining_ratio",
                                      "Share of the budget's limit still available (0 once exceeded).",
                                      labels=("budget",))
        thresholds = GaugeMetricFamily("llm_budget_threshold_ratio",
                                       "Configured warning thresholds, as fractions of the limit.",
                                       labels=("budget", "threshold"))
        period_end = GaugeMetricFamily("llm_budget_period_end_timestamp_seconds",
                                       "End of the budget's current period (Unix time).", labels=("budget",))
        for name, st in sorted(statuses.items()):
            limit.add_metric((name,), st.budget.limit_pusd / PICO_PER_USD)
            spent.add_metric((name,), st.spent_pusd / PICO_PER_USD)
            projected.add_metric((name,), st.projected_pusd / PICO_PER_USD)
            remaining.add_metric((name,), st.remaining_ratio)
            for t in st.budget.thresholds:
                thresholds.add_metric((name, f"{t:g}"), t)
            period_end.add_metric((name,), st.period_end_ns / 1e9)
        for name, table in sorted((snap.entities if snap is not None else {}).items()):
            limit.add_metric((name,), table.budget.limit_pusd / PICO_PER_USD)  # the limit of each entity
        yield from (limit, spent, projected, remaining, thresholds, period_end)
        yield from self._entities(snap)
        yield from self._monitored()
        yield CounterMetricFamily("llm_budget_refresh_errors", "Failed reads of budget spend from the store.",
                                  value=self._service.refresh_errors)

    def _entities(self, snap: Snapshot | None) -> Iterator[Metric]:
        spent = GaugeMetricFamily("llm_budget_entity_spent_usd", "Spend of one entity of a per-entity budget in "
                                  "its current period, USD (entity=other: the rest).", labels=("budget", "entity"))
        ratio = GaugeMetricFamily("llm_budget_entity_spent_ratio", "Spend of one entity / the per-entity limit "
                                  "(entity=other: the highest of the rest is not known; the sum is).",
                                  labels=("budget", "entity"))
        exceeded = GaugeMetricFamily("llm_budget_entities_exceeded", "Tracked entities at or over the limit.",
                                     labels=("budget",))
        tracked = GaugeMetricFamily("llm_budget_entities_tracked", "Entities tracked one by one this period.",
                                    labels=("budget",))
        folded = GaugeMetricFamily("llm_budget_entities_folded", "Distinct entities past max_entities this "
                                   "period, counted in the budget's 'other' bucket.", labels=("budget",))
        for name, table in sorted((snap.entities if snap is not None else {}).items()):
            limit = table.budget.limit_pusd
            ranked = sorted(table.entities.values(), key=lambda st: (-st.spent_pusd, st.entity))
            shown = [st for st in ranked if len(st.entity) <= MAX_VALUE_CHARS and st.entity != OTHER][:MAX_ENTITY_SERIES]
            rest = table.other.spent_pusd + sum(st.spent_pusd for st in ranked) - sum(st.spent_pusd for st in shown)
            for st in shown:
                spent.add_metric((name, st.entity), st.spent_pusd / PICO_PER_USD)
                ratio.add_metric((name, st.entity), st.spent_pusd / limit)
            spent.add_metric((name, OTHER), rest / PICO_PER_USD)
            exceeded.add_metric((name,), sum(1 for st in ranked if st.spent_pusd >= limit))
            tracked.add_metric((name,), len(table.entities))
            folded.add_metric((name,), table.folded)
        yield from (spent, ratio, exceeded, tracked, folded)

    def _monitored(self) -> Iterator[Metric]:
        if self._monitor is None:
            return
        score = GaugeMetricFamily("llm_spend_anomaly_score", "Hourly spend against its hour-of-week baseline: "
                                  "(spend - median) / max(1.4826 MAD, min_usd / z).", labels=("tenant", "service", "model"))
        flagged = GaugeMetricFamily("llm_spend_anomaly", "1 when the series' current or last hour is anomalous "
                                    "(score >= z and spend >= ratio x baseline).", labels=("tenant", "service", "model"))
        for a in self._monitor.anomalies:
            labels = tuple(v if len(v) <= MAX_VALUE_CHARS else OTHER for v in a.series)
            score.add_metric(labels, round(a.score, 3))
            flagged.add_metric(labels, 1.0 if a.anomalous else 0.0)
        yield from (score, flagged)
        sender = self._monitor.sender
        yield CounterMetricFamily("llm_webhook_deliveries", "Webhook events delivered.", value=sender.delivered)
        yield CounterMetricFamily("llm_webhook_failures", "Webhook events given up after every retry.",
                                  value=sender.failed)
        yield CounterMetricFamily("llm_budget_monitor_errors", "Failed rounds of the budgets' background monitor.",
                                  value=self._monitor.errors)
