"""Budget gauges for ``/metrics``, computed from the service's cached statuses at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

log = get_logger("budgets")


class BudgetCollector(Collector):
    """``llm_budget_*`` gauges labelled by budget (nothing for a scrape when the store cannot be read).

    Args:
        service: the budget service whose statuses are exported.
    """

    def __init__(self, service: BudgetService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            log.warning("budget gauges skipped: store unavailable", error=str(exc)[:300])
            statuses = {}
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
        yield from (limit, spent, projected, remaining, thresholds, period_end)
        yield CounterMetricFamily("llm_budget_refresh_errors", "Failed reads of budget spend from the store.",
                                  value=self._service.refresh_errors)
