"""Budget rules over stored costs: spend, projection and status per budget, and model advice.

Spend of a budget = what the store holds for its scope in the current period + what this process
accepted and has not written yet (the :class:`SpendLedger`). The two are read so that a batch being
written at the same time is counted exactly once (see :meth:`BudgetService.refresh`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_cost_tracker.budgets._config import Budget, BudgetOptions
from llm_cost_tracker.budgets._ledger import BUCKET_NS, Aggregate, Dims, SpendLedger
from llm_cost_tracker.budgets._period import period_bounds
from llm_cost_tracker.budgets._sql import Rollup, detect_rollup, quote, spend_sql
from llm_cost_tracker.i18n import ENGLISH, NP_, Translator
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

log = get_logger("budgets")


def _usd(pusd: int) -> float:
    return round(pusd / PICO_PER_USD, 6)


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's spend in its current period, as of ``as_of_ns``."""

    budget: Budget
    period_start_ns: int
    period_end_ns: int
    as_of_ns: int
    spent_pusd: int
    pending_pusd: int
    window_pusd: int
    window_ns: int
    exact: bool = True

    @property
    def remaining_pusd(self) -> int:
        return self.budget.limit_pusd - self.spent_pusd

    @property
    def spent_ratio(self) -> float:
        return self.spent_pusd / self.budget.limit_pusd

    @property
    def remaining_ratio(self) -> float:
        """Share of the limit left, 0 once exceeded."""
        return max(0.0, self.remaining_pusd / self.budget.limit_pusd)

    @property
    def burn_pusd_per_second(self) -> float:
        return self.window_pusd * 1e9 / self.window_ns if self.window_ns > 0 else 0.0

    @property
    def projected_pusd(self) -> int:
        """End-of-period spend if the burn rate of the recent window goes on (never below spent)."""
        left = max(0, self.period_end_ns - self.as_of_ns)
        if self.window_ns <= 0 or self.window_pusd <= 0:
            return self.spent_pusd
        return self.spent_pusd + self.window_pusd * left // self.window_ns

    @property
    def thresholds_crossed(self) -> tuple[float, ...]:
        return tuple(t for t in self.budget.thresholds if self.spent_pusd >= t * self.budget.limit_pusd)

    @property
    def status(self) -> str:
        if self.spent_pusd >= self.budget.limit_pusd:
            return "exceeded"
        return "warning" if self.thresholds_crossed else "ok"

    def downgrade_steps(self) -> int:
        """How many steps down a downgrade list this budget asks for: one per level crossed from
        ``downgrade_from`` (the levels are ``downgrade_from`` and every higher threshold)."""
        b = self.budget
        levels = sorted({b.downgrade_from, *(t for t in b.thresholds if t > b.downgrade_from)})
        return sum(1 for t in levels if self.spent_pusd >= t * b.limit_pusd)

    def to_json(self) -> dict[str, Any]:
        b = self.budget
        return {
            "name": b.name, "description": b.description, "scope": b.scope.describe(),
            "period": b.period, "timezone": b.timezone,
            "period_start": _iso(self.period_start_ns), "period_end": _iso(self.period_end_ns),
            "limit_usd": _usd(b.limit_pusd), "spent_usd": _usd(self.spent_pusd),
            "remaining_usd": _usd(self.remaining_pusd), "projected_usd": _usd(self.projected_pusd),
            "pending_usd": _usd(self.pending_pusd),
            "spent_ratio": round(self.spent_ratio, 6), "remaining_ratio": round(self.remaining_ratio, 6),
            "burn_rate_usd_per_hour": round(self.burn_pusd_per_second * 3600 / PICO_PER_USD, 6),
            "burn_window_seconds": self.window_ns // 10**9,
            "status": self.status, "thresholds": list(b.thresholds),
            "thresholds_crossed": list(self.thresholds_crossed),
            "downgrade": {m: list(s) for m, s in b.downgrade.items()},
            "as_of": _iso(self.as_of_ns), "exact": self.exact,
        }


class StoreUnavailable(RuntimeError):
    """Spend could not be read from the store.

    Args:
        detail: what failed (``Type: message``), untranslated.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"cannot read spend from the store: {detail}")
        self.detail = detail


# Budget statuses as shown inside advice reasons (msgctxt "budget status"); JSON keeps the English value.
_STATUS_NAMES = (NP_("budget status", "ok"), NP_("budget status", "warning"), NP_("budget status", "exceeded"))


class BudgetService:
    """Computes budget statuses (cached for ``options.refresh_seconds``) and answers advice requests.

    Args:
        budgets: the validated budgets.
        client: a clickhouse-connect client used only by this service (calls are serialised).
        ledger: spend accepted by this process and not yet stored (None: the store alone).
        options: refresh interval.
        clock: returns now in nanoseconds since the epoch (tests pass a fixed clock).
    """

    def __init__(self, budgets: list[Budget], client: Any, ledger: SpendLedger | None = None,
                 options: BudgetOptions | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        self.budgets = {b.name: b for b in budgets}
        self._client = client
        self.ledger = ledger if ledger is not None else SpendLedger(self.attribute_keys(budgets))
        self._options = options or BudgetOptions()
        self._clock = clock
        self._client_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cached: tuple[float, dict[str, BudgetStatus]] | None = None
        self._rollup: Rollup | None | bool = False  # False: not looked for yet
        self.refresh_errors = 0

    @staticmethod
    def attribute_keys(budgets: list[Budget]) -> tuple[str, ...]:
        return tuple(sorted({k for b in budgets for k, _ in b.scope.attributes}))

    def _store_spend(self, bounds: Mapping[str, tuple[int, int, int]]) -> dict[str, tuple[int, int]]:
        with self._client_lock:
            if self._rollup is False:
                self._rollup = detect_rollup(self._client)
                log.info("budget spend source", rollup=self._rollup.table if self._rollup else None)
            rollup = self._rollup if isinstance(self._rollup, Rollup) else None
            parts = [f"SELECT {quote(name)} AS budget, * FROM "
                     f"({spend_sql(self.budgets[name].scope, s, w, e, rollup)})" for name, (s, w, e) in bounds.items()]
            rows = self._client.query(" UNION ALL ".join(parts)).result_rows
        return {name: (int(Decimal(period or 0) * PICO_PER_USD), int(Decimal(window or 0) * PICO_PER_USD))
                for name, period, window in rows}

    def _pending_spend(self, pending: Aggregate, bounds: Mapping[str, tuple[int, int, int]]) -> dict[str, tuple[int, int]]:
        keys = self.ledger.attribute_keys
        matched: dict[Dims, dict[str, bool]] = {}
        out = {name: [0, 0] for name in bounds}
        for (dims, bucket), pusd in pending.items():
            per_budget = matched.get(dims)
            if per_budget is None:
                tenant, service, provider, model, values = dims
                attrs = dict(zip(keys, values, strict=True))
                per_budget = matched[dims] = {
                    name: self.budgets[name].scope.matches(tenant, service, provider, model, attrs) for name in bounds}
            t0, t1 = bucket * BUCKET_NS, (bucket + 1) * BUCKET_NS
            for name, (start, window, end) in bounds.items():
                if per_budget[name] and t0 >= start and t0 < end:
                    out[name][0] += pusd
                    if t1 > window:
                        out[name][1] += pusd
        return {name: (v[0], v[1]) for name, v in out.items()}

    def refresh(self) -> dict[str, BudgetStatus]:
        """Read every budget's spend now (store + ledger, each span once); raises StoreUnavailable."""
        if not self.budgets:
            return {}  # nothing configured: the API answers an empty list without asking the store
        now_ns = self._clock()
        now = datetime.fromtimestamp(now_ns / 1e9, UTC)
        bounds: dict[str, tuple[int, int, int]] = {}
        for name, b in self.budgets.items():
            start, end = period_bounds(b.period, b.tz, now)
            s_ns, e_ns = int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9
            bounds[name] = (s_ns, max(s_ns, now_ns - b.burn_window_seconds * 10**9), e_ns)
        try:
            stored, pending, exact = self.ledger.read(lambda: self._store_spend(bounds))
        except Exception as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        pending_spend = self._pending_spend(pending, bounds)
        statuses = {}
        for name, (s_ns, w_ns, e_ns) in bounds.items():
            store_period, store_window = stored.get(name, (0, 0))
            pend_period, pend_window = pending_spend[name]
            statuses[name] = BudgetStatus(
                self.budgets[name], s_ns, e_ns, now_ns, spent_pusd=store_period + pend_period,
                pending_pusd=pend_period, window_pusd=store_window + pend_window, window_ns=now_ns - w_ns,
                exact=exact)
        return statuses

    def statuses(self, max_age: float | None = None) -> dict[str, BudgetStatus]:
        """Every budget's status, re-read when the cached one is older than ``max_age`` seconds."""
        max_age = self._options.refresh_seconds if max_age is None else max_age
        with self._cache_lock:
            if self._cached is not None and time.monotonic() - self._cached[0] <= max_age:
                return self._cached[1]
            try:
                result = self.refresh()
            except StoreUnavailable:
                self.refresh_errors += 1
                raise
            self._cached = (time.monotonic(), result)
            return result

    def advise(self, model: str, tenant: str = "", service: str = "", provider: str = "",
               attributes: Mapping[str, str] | None = None,
               visible: Callable[[Budget], bool] | None = None,
               translator: Translator = ENGLISH) -> dict[str, Any]:
        """Which model a call should use now: the downgrade policies of the budgets covering it applied.

        Args:
            visible: when given, only budgets it accepts are considered (a tenant sees only its own).
            translator: language of ``reason`` (the rest of the answer is machine-readable English).
        """
        t = translator
        attributes = attributes or {}
        covering = [st for st in self.statuses().values()
                    if st.budget.scope.matches(tenant, service, provider, model, attributes)
                    and (visible is None or visible(st.budget))]
        chosen, deciding, depth = model, None, 0
        summary = []
        for st in sorted(covering, key=lambda s: (-s.spent_ratio, s.budget.name)):
            policy = st.budget.downgrade.get(model, ())
            steps = min(st.downgrade_steps(), len(policy)) if policy else 0
            summary.append({"name": st.budget.name, "status": st.status, "spent_ratio": round(st.spent_ratio, 6),
                            "spent_usd": _usd(st.spent_pusd), "limit_usd": _usd(st.budget.limit_pusd),
                            "downgrade": list(policy), "downgrade_step": steps})
            if steps > depth:
                chosen, deciding, depth = policy[steps - 1], st, steps
        if not covering:
            reason = t._("no budget covers this call; use {model}").format(model=model)
        elif deciding is None:
            worst = max(covering, key=lambda s: s.spent_ratio)
            why = (t._("no downgrade policy for this model") if not any(model in s.budget.downgrade for s in covering)
                   else t._("below every downgrade level"))
            reason = t._("budget {name} is at {ratio} of {limit} USD ({status}); {why}; use {model}").format(
                name=repr(worst.budget.name), ratio=t.percent(worst.spent_ratio),
                limit=t.number(_usd(worst.budget.limit_pusd)), status=t.pgettext("budget status", worst.status),
                why=why, model=model)
        else:
            b = deciding.budget
            reason = t._("budget {name} is at {ratio} of {limit} USD ({status}, downgrade from {level}); "
                         "step {step} of {steps} in its downgrade list for {model}: use {chosen}").format(
                name=repr(b.name), ratio=t.percent(deciding.spent_ratio), limit=t.number(_usd(b.limit_pusd)),
                status=t.pgettext("budget status", deciding.status),
                level=t.percent(b.downgrade_from, decimals=0),
                step=depth, steps=len(b.downgrade[model]), model=model, chosen=chosen)
        return {"model": chosen, "requested_model": model, "downgraded": chosen != model, "reason": reason,
                "budget_exceeded": any(s.status == "exceeded" for s in covering), "budgets": summary}
