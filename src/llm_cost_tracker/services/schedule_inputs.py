"""The tracker's inputs to a plan: the service's prices, speeds measured from its spans, budget remainders.

One :class:`TrackerInputs` per process (the schedules API of ``run``, the Kafka ``scheduler`` worker):
``for_caller`` gives the :class:`~llm_cost_tracker.scheduler.inputs.PlanInputs` of one batch, so both
paths plan with the same catalog the service prices spans with (bundled prices, synced layers, the user
price file, the caller's tenant prices and discounts), the same measured speeds and the same budgets.

Who sees what: a tenant's batch is priced with its tenant prices, measured from its own spans only, and
may name only the budgets scoped to exactly that tenant (others answer "unknown budget", as
``GET /v1/budgets/{name}`` answers 404). An admin (or a service without tokens) sees every span and
budget and gets list prices unless the batch names a ``tenant``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from llm_cost_tracker.config import SchedulerConfig
from llm_cost_tracker.pricing._quote import TIER_ATTRIBUTES  # the keys the catalog reads a span's tier from
from llm_cost_tracker.scheduler.inputs import PlanInputs, Speed, TierCostFn, catalog_tier_cost, fit_speed
from llm_cost_tracker.storage.plans import speed_samples

__all__ = ["InputsUnavailable", "TrackerInputs"]


class InputsUnavailable(RuntimeError):
    """The store or the budgets could not be read now (the caller answers 503 / retries)."""


class TrackerInputs:
    """Builds the plan inputs of a caller from the service's catalog holder, store client and budgets.

    Args:
        settings: ``scheduler_speed_window_hours`` and ``scheduler_speed_max_spans`` bound the speed query.
        catalog: the price catalog holder (``.current``) the service prices spans with.
        client: a clickhouse-connect client used only here (calls are serialized).
        budgets: the budget service (None: named budgets are refused with a clear message).
    """

    def __init__(self, settings: SchedulerConfig, catalog: Any, client: Any, budgets: Any = None) -> None:
        self._settings = settings
        self._catalog = catalog
        self._client = client
        self._budgets = budgets
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def for_caller(self, tenant: str | None) -> PlanInputs:
        """Inputs for a batch of ``tenant`` (None: an admin, or a service without tokens)."""
        catalog = self._catalog.current
        name = tenant or ""

        def costs(at_ns: int) -> TierCostFn:
            return catalog_tier_cost(catalog, at_ns, name)

        described = "the service's catalog"
        path = getattr(getattr(catalog, "overrides", None), "path", "")
        if path:
            described += f" with the user price file {path.rsplit('/', 1)[-1]}"
        if name:
            described += f", tenant {name}'s prices and discounts"
        return PlanInputs(costs=costs, speed_of=lambda p, m: self.speed(p, m, tenant),
                          budget_left=(lambda b: self.budget_left(b, tenant)) if self._budgets is not None
                          else None, tenant=name, priced_with=described)

    def speed(self, provider: str, model: str, tenant: str | None) -> Speed | None:
        """The speed of ``provider``/``model`` over the recent window (None: no usable spans)."""
        hours = self._settings.scheduler_speed_window_hours
        since = time.time_ns() - int(hours * 3600 * 10**9)
        try:
            with self._lock:
                samples = speed_samples(self._client, provider, model, since, tenant,
                                        limit=self._settings.scheduler_speed_max_spans,
                                        tier_attributes=TIER_ATTRIBUTES)
        except Exception as exc:
            raise InputsUnavailable(f"cannot read spans to measure {provider}/{model}: "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        return fit_speed(np.array(samples.input_tokens, dtype=np.float64),
                         np.array(samples.output_tokens, dtype=np.float64),
                         np.array(samples.seconds, dtype=np.float64), window_hours=hours)

    def budget_left(self, name: str, tenant: str | None) -> int:
        """Pico-USD the budget ``name`` has left now; LookupError for a budget the caller cannot see."""
        budgets = self._budgets.budgets
        visible = sorted(n for n, b in budgets.items() if tenant is None or b.scope.tenant == (tenant,))
        if name not in visible:
            known = ", ".join(visible) or "none configured"
            raise LookupError(f"unknown budget {name!r} (known: {known})")
        try:
            status = self._budgets.statuses(max_age=0.0)[name]
        except Exception as exc:
            raise InputsUnavailable(f"cannot read budget {name!r}: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return int(status.remaining_pusd)
