"""Budgets: spend per scope (and per entity) and period, gauges, the HTTP API, checks, webhooks, anomalies.

The pipeline builds a :class:`BudgetHook` from the config file's tables and the store and privacy sections, wraps its queue with
:meth:`BudgetHook.track`, serves the routes and gauges on its HTTP server with
:meth:`BudgetHook.serve` (which starts the background monitor) and stops it with :meth:`BudgetHook.stop`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llm_cost_tracker.budgets._config import (
    Budget,
    BudgetConfigError,
    BudgetOptions,
    Scope,
    parse_anomalies,
    parse_budget,
    parse_budgets,
)
from llm_cost_tracker.budgets._entities import EntityNames
from llm_cost_tracker.budgets._ledger import SpendLedger, TrackingQueue
from llm_cost_tracker.budgets._metrics import BudgetCollector
from llm_cost_tracker.budgets._monitor import BudgetMonitor
from llm_cost_tracker.budgets._period import PERIODS, period_bounds
from llm_cost_tracker.budgets._seasonal import AnomalyOptions
from llm_cost_tracker.budgets._status import BudgetStatus, EntityStatuses, Snapshot
from llm_cost_tracker.budgets._webhooks import SIGNATURE_HEADER, Webhook, WebhookSender, parse_webhooks, sign
from llm_cost_tracker.budgets.api import BudgetsApi
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.config import PrivacyConfig, StoreConfig, config_sections
from llm_cost_tracker.storage.client import connect
from llm_cost_tracker.transforms._detectors import NEVER_CLEAR, Scanner
from llm_cost_tracker.transforms.redact import Redact

__all__ = ["PERIODS", "SIGNATURE_HEADER", "AnomalyOptions", "Budget", "BudgetCollector", "BudgetConfigError",
           "BudgetHook", "BudgetMonitor", "BudgetOptions", "BudgetService", "BudgetStatus", "BudgetsApi",
           "EntityNames", "EntityStatuses", "Scope", "Snapshot", "SpendLedger", "StoreUnavailable", "TrackingQueue", "Webhook",
           "WebhookSender", "holds_secret", "load_budgets", "parse_budget", "period_bounds", "sign"]


def holds_secret() -> Callable[[str], bool]:
    """Whether a value holds a key, token or card number: the ingest name scrubber's detectors
    (``NEVER_CLEAR``), whatever the redaction policy."""
    scanner = Scanner(NEVER_CLEAR)

    def check(value: str) -> bool:
        counts: dict[str, int] = {}
        scanner.mask(value, counts)
        return bool(counts)

    return check


def load_budgets(config_file: str | None) -> tuple[list[Budget], BudgetOptions]:
    """The budgets of ``config_file`` (none without a file); raises BudgetConfigError listing every problem."""
    return parse_budgets(config_sections(config_file))


class BudgetHook:
    """What the all-in-one service needs: the ledger-tracking queue wrapper, the HTTP wiring, the monitor.

    Args:
        service: the budget service (its ledger is fed by :meth:`track`).
        webhooks: the configured webhooks.
        anomalies: the ``[anomalies]`` options.
    """

    def __init__(self, service: BudgetService, webhooks: list[Webhook] | None = None,
                 anomalies: AnomalyOptions | None = None) -> None:
        self.service = service
        self.sender = WebhookSender(webhooks or [], service.client, service.client_lock)
        self.monitor = BudgetMonitor(service, self.sender, anomalies or AnomalyOptions(enabled=False),
                                     interval=service.options.refresh_seconds, clock=service.clock)

    @classmethod
    def from_config(cls, sections: Mapping[str, Any], store: StoreConfig, privacy: PrivacyConfig) -> BudgetHook:
        """The hook for the budgets, webhooks and anomalies of the config file's tables (``sections``), with
        its own client of ``store`` (budgets can be added at run time, so there is always one); the API's
        stored budgets are loaded. Budget keys are normalized by the redaction policy of ``privacy``.

        Raises:
            BudgetConfigError: every problem of [[budgets]], [budget_options], [[webhooks]] and [anomalies].
        """
        problems: list[str] = []
        budgets: list[Budget] = []
        options = BudgetOptions()
        webhooks: list[Webhook] = []
        anomalies = AnomalyOptions()
        try:
            budgets, options = parse_budgets(sections)
        except BudgetConfigError as exc:
            problems += exc.problems
        try:
            webhooks = parse_webhooks(sections)
        except BudgetConfigError as exc:
            problems += exc.problems
        try:
            anomalies = parse_anomalies(sections)
        except BudgetConfigError as exc:
            problems += exc.problems
        if problems:
            raise BudgetConfigError(problems)
        service = BudgetService(budgets, connect(store), options=options)
        redact = Redact.from_config(privacy, sections)
        service.normalize = lambda key, value: redact.redact_attributes({key: value}, {}).get(key, "")
        service.names = EntityNames(holds_secret())
        service.load_stored()
        hook = cls(service, webhooks, anomalies)
        hook.sender.load()
        return hook

    @classmethod
    def none_configured(cls) -> BudgetHook:
        """A hook with no budgets and no store, so ``GET /v1/budgets`` answers an empty list (tests)."""
        return cls(BudgetService([], client=None))

    def track(self, queue: Any) -> TrackingQueue:
        """``queue`` wrapped so that accepted and stored spend reach the ledger."""
        return TrackingQueue(queue, self.service.ledger)

    def serve(self, http: Any, registry: Any, guard: Any = None, lang: str = "") -> None:
        """Register the budget routes on ``http`` (behind ``guard`` when given) and the gauges in ``registry``;
        start the webhook sender and the background monitor (when there is a store).

        Args:
            lang: default language of API messages (a request's Accept-Language wins).
        """
        BudgetsApi(self.service, guard, lang=lang, monitor=self.monitor).register(http)
        registry.register(BudgetCollector(self.service, self.monitor))
        if self.service.client is not None:
            self.sender.start()
            self.monitor.start()

    def stop(self) -> None:
        """Stop the monitor and the webhook sender (events still queued are not sent; a restart sends them)."""
        self.monitor.stop()
        self.sender.stop()
