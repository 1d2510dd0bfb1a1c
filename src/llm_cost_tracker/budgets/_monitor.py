"""The budgets' background thread: keeps the snapshot fresh, finds anomalies, refits forecasts, notifies.

Every ``max(refresh_seconds, 1)`` seconds it refreshes the budget snapshot (so ``/v1/check`` answers
from memory) and turns it into threshold and forecast events; every ``[anomalies] interval_seconds``
it reads the hourly spend per (tenant, service, model) and scores the current and the last complete
hour against their hour-of-week baselines, and checks for unpriced spend; every 5 minutes it refits
the plain budgets' hour-of-week forecast models. Events go to the :class:`WebhookSender`. A failing
store is logged and retried on the next round, never fatal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_cost_tracker.budgets._seasonal import (
    HOUR_NS,
    HOURS_PER_WEEK,
    AnomalyOptions,
    baseline,
    fit_seasonal,
    score_hour,
)
from llm_cost_tracker.budgets._sql import hourly_sql, unpriced_sql
from llm_cost_tracker.budgets._status import BudgetStatus, Snapshot, iso
from llm_cost_tracker.budgets._webhooks import Event, WebhookSender
from llm_cost_tracker.budgets.service import BudgetService
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

__all__ = ["Anomaly", "BudgetMonitor", "budget_events", "usd_text"]

log = get_logger("budgets")
FORECAST_SECONDS = 300.0
Series = tuple[str, str, str]
"""(tenant, service, model)."""


def usd_text(pusd: int | float) -> str:
    """Exact USD as a decimal string (``0.0021``)."""
    value = (Decimal(int(pusd)) / PICO_PER_USD).normalize()
    return format(value, "f") if value else "0"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One series' score for an hour (the current one, or the last complete one when it scores higher)."""

    series: Series
    hour_ns: int
    spend_pusd: int
    baseline_pusd: float
    score: float
    anomalous: bool
    baseline_kind: str

    def to_json(self) -> dict[str, Any]:
        tenant, service, model = self.series
        return {"tenant": tenant, "service": service, "model": model, "hour": iso(self.hour_ns),
                "spend_usd": usd_text(self.spend_pusd), "baseline_usd": usd_text(self.baseline_pusd),
                "score": round(self.score, 3), "anomalous": self.anomalous, "baseline": self.baseline_kind}


def _who(st: BudgetStatus) -> str:
    each = st.budget.scope.each
    return f"{st.budget.name} ({each}={st.entity})" if each else st.budget.name


def budget_events(snap: Snapshot) -> Iterable[Event]:
    """Threshold and forecast events of every budget and tracked entity in ``snap`` (keys include the period)."""
    statuses = list(snap.statuses.values()) + [st for t in snap.entities.values() for st in t.entities.values()]
    for st in statuses:
        b = st.budget
        base = {"budget": b.name, "entity": st.entity, "each": b.scope.each, "period": b.period,
                "period_start": iso(st.period_start_ns), "period_end": iso(st.period_end_ns),
                "limit_usd": usd_text(b.limit_pusd), "spent_usd": usd_text(st.spent_pusd),
                "projected_usd": usd_text(st.projected_pusd), "status": st.status}
        crossed = st.thresholds_crossed
        if crossed:
            top = crossed[-1]
            text = (f"Budget {_who(st)} passed {top:.0%} of its {usd_text(b.limit_pusd)} USD {b.period} limit: "
                    f"spent {usd_text(st.spent_pusd)} USD since {iso(st.period_start_ns)}.")
            # one event for the highest threshold crossed; its key also stands for the ones below it
            yield Event("threshold", f"threshold/{b.name}/{st.entity}/{st.period_start_ns // 10**9}/{top:g}",
                        {**base, "threshold": top, "text": text})
        # a straight line over less than a full burn window (the period's first minutes) is noise: no event
        trusted = st.expected_rest_pusd is not None or st.window_ns >= b.burn_window_seconds * 10**9
        if trusted and st.projected_pusd >= b.limit_pusd > st.spent_pusd:
            text = (f"Budget {_who(st)} is forecast to reach {usd_text(st.projected_pusd)} USD by "
                    f"{iso(st.period_end_ns)}, over its {usd_text(b.limit_pusd)} USD limit "
                    f"(spent {usd_text(st.spent_pusd)} USD so far).")
            yield Event("forecast", f"forecast/{b.name}/{st.entity}/{st.period_start_ns // 10**9}",
                        {**base, "text": text})


class BudgetMonitor:
    """The background thread of the budgets.

    Args:
        service: the budget service.
        sender: where events go.
        anomalies: the ``[anomalies]`` options.
        clock: now in nanoseconds (tests pass their own).
    """

    def __init__(self, service: BudgetService, sender: WebhookSender, anomalies: AnomalyOptions,
                 interval: float = 1.0, clock: Callable[[], int] = time.time_ns) -> None:
        self.service = service
        self.sender = sender
        self.options = anomalies
        self._interval = max(interval, 1.0)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.anomalies: list[Anomaly] = []
        self.errors = 0
        self._last_anomaly = 0.0
        self._last_forecast = 0.0
        self._last_unpriced = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="budget-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self._interval)

    def round(self) -> None:
        """One pass: forecasts (when due), snapshot and its events, anomalies and unpriced spend (when due)."""
        now = time.monotonic()
        try:
            if self.service.budgets and now - self._last_forecast >= FORECAST_SECONDS:
                self._last_forecast = now
                self.refit()
            snap = self.service.snapshot()
            if self.sender.wants("threshold", "forecast"):
                for event in budget_events(snap):
                    self.sender.submit(event)
            if self.options.enabled and now - self._last_anomaly >= self.options.interval_seconds:
                self._last_anomaly = now
                for anomaly in self.score():
                    if anomaly.anomalous:
                        self.sender.submit(self._anomaly_event(anomaly))
            if self.sender.wants("unpriced") and now - self._last_unpriced >= self.options.interval_seconds:
                self._last_unpriced = now
                self._unpriced()
        except Exception as exc:  # the store failing: the next round retries; counted for the metric
            self.errors += 1
            log.warning("budget monitor round failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")

    def _series(self, sql: str, by_series: bool) -> dict[Series, dict[int, int]]:
        out: dict[Series, dict[int, int]] = {}
        for row in self.service.query(sql):
            key: Series = (str(row[0]), str(row[1]), str(row[2])) if by_series else ("", "", "")
            hour, spend = row[-2], row[-1]
            pusd = int(Decimal(spend or 0) * PICO_PER_USD)
            if pusd:
                out.setdefault(key, {})[int(hour) // 3600] = pusd
        return out

    def refit(self) -> None:
        """Fit each plain budget's hour-of-week model from its last ``weeks`` weeks of hourly spend."""
        now = self._clock()
        start = (now // HOUR_NS - self.options.weeks * HOURS_PER_WEEK - 1) * HOUR_NS
        for name, budget in list(self.service.budgets.items()):
            if budget.per_entity:
                continue
            series = self._series(hourly_sql(budget.scope, start, self.service.rollup), by_series=False)
            history = series.get(("", "", ""), {})
            model = fit_seasonal(history, now, min(history) if history else now // HOUR_NS)
            if model is None:
                self.service.models.pop(name, None)
            else:
                self.service.models[name] = model

    def score(self) -> list[Anomaly]:
        """Score every series' current and last complete hour; keeps the ``max_series`` highest."""
        o = self.options
        now = self._clock()
        current = now // HOUR_NS
        start = (current - o.weeks * HOURS_PER_WEEK - 1) * HOUR_NS
        found: list[Anomaly] = []
        for key, series in self._series(hourly_sql(None, start, self.service.rollup, by_series=True), True).items():
            first = min(series)
            best: Anomaly | None = None
            for hour in (current, current - 1):
                base = baseline(series, hour, first, o.weeks, o.recent_hours)
                if base is None or hour < first:
                    continue
                value = series.get(hour, 0)
                score, flagged = score_hour(value, base, o)
                if best is None or score > best.score:
                    best = Anomaly(key, hour * HOUR_NS, value, base.median, score, flagged, base.kind)
            if best is not None:
                found.append(best)
        found.sort(key=lambda a: -a.score)
        self.anomalies = found[:o.max_series]
        return self.anomalies

    def _anomaly_event(self, a: Anomaly) -> Event:
        tenant, service, model = a.series
        text = (f"Anomalous LLM spend: {model} in {service or 'unknown service'}"
                f"{f' (tenant {tenant})' if tenant else ''} spent {usd_text(a.spend_pusd)} USD in the hour from "
                f"{iso(a.hour_ns)}, against a usual {usd_text(a.baseline_pusd)} USD (score {a.score:.1f}).")
        return Event("anomaly", f"anomaly/{tenant}/{service}/{model}/{a.hour_ns // 10**9}", {**a.to_json(), "text": text})

    def _unpriced(self) -> None:
        now = self._clock()
        hour = now // HOUR_NS * HOUR_NS
        rows = self.service.query(unpriced_sql(hour))
        count, models = (int(rows[0][0]), list(rows[0][1])) if rows else (0, [])
        if count:
            when = datetime.fromtimestamp(hour // 10**9, UTC).isoformat().replace("+00:00", "Z")
            text = (f"{count} LLM spans since {when} could not be priced (unknown models: {', '.join(models)}); "
                    "their cost is not in any budget until a price is added and they are repriced.")
            self.sender.submit(Event("unpriced", f"unpriced/{hour // 10**9}",
                                     {"spans": count, "models": models, "hour": when, "text": text}))
