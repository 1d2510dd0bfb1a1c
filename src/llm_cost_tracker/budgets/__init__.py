"""Budgets: spend per scope and period, Prometheus gauges, the HTTP API and downgrade advice.

The pipeline builds a :class:`BudgetHook` from the settings (None when the config file has no
``[[budgets]]``), wraps its queue with :meth:`BudgetHook.track` and serves the routes and gauges on
its HTTP server with :meth:`BudgetHook.serve`.
"""

from __future__ import annotations

from typing import Any

from llm_cost_tracker.budgets._config import Budget, BudgetConfigError, BudgetOptions, Scope, parse_budgets
from llm_cost_tracker.budgets._ledger import SpendLedger, TrackingQueue
from llm_cost_tracker.budgets._metrics import BudgetCollector
from llm_cost_tracker.budgets._period import PERIODS, period_bounds
from llm_cost_tracker.budgets.api import BudgetsApi
from llm_cost_tracker.budgets.service import BudgetService, BudgetStatus, StoreUnavailable
from llm_cost_tracker.config import Settings, config_sections

__all__ = ["PERIODS", "Budget", "BudgetCollector", "BudgetConfigError", "BudgetHook", "BudgetOptions",
           "BudgetService", "BudgetStatus", "BudgetsApi", "Scope", "SpendLedger", "StoreUnavailable",
           "TrackingQueue", "load_budgets", "period_bounds"]


def load_budgets(config_file: str | None) -> tuple[list[Budget], BudgetOptions]:
    """The budgets of ``config_file`` (none without a file); raises BudgetConfigError listing every problem."""
    return parse_budgets(config_sections(config_file))


class BudgetHook:
    """What the all-in-one service needs: the ledger-tracking queue wrapper and the HTTP wiring.

    Args:
        service: the budget service (its ledger is fed by :meth:`track`).
    """

    def __init__(self, service: BudgetService) -> None:
        self.service = service

    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetHook | None:
        """The hook for ``settings.config_file``'s budgets, with its own store client; None without budgets."""
        budgets, options = load_budgets(settings.config_file)
        if not budgets:
            return None
        from llm_cost_tracker.storage.client import connect

        return cls(BudgetService(budgets, connect(settings), options=options))

    @classmethod
    def none_configured(cls) -> BudgetHook:
        """A hook with no budgets, so ``GET /v1/budgets`` answers an empty list rather than "no route"."""
        return cls(BudgetService([], client=None))

    def track(self, queue: Any) -> TrackingQueue:
        """``queue`` wrapped so that accepted and stored spend reach the ledger."""
        return TrackingQueue(queue, self.service.ledger)

    def serve(self, http: Any, registry: Any, guard: Any = None, lang: str = "") -> None:
        """Register the budget routes on ``http`` (behind ``guard`` when given) and the gauges in ``registry``.

        Args:
            lang: default language of API messages (a request's Accept-Language wins).
        """
        BudgetsApi(self.service, guard, lang=lang).register(http)
        registry.register(BudgetCollector(self.service))
