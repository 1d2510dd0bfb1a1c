"""Budget rules over stored costs: spend, projection and status per budget, and model advice.

Spend of a budget = what the store holds for its scope in the current period + what this process
accepted and has not written yet (the :class:`SpendLedger`). The two are read so that a batch being
written at the same time is counted exactly once (see :meth:`BudgetService.refresh`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_cost_tracker.budgets._config import Budget, BudgetOptions
from llm_cost_tracker.budgets._definitions import BudgetDefinitions
from llm_cost_tracker.budgets._entities import (
    OTHER,
    EntityNames,
    EntityRegistry,
    entity_spend_sql,
    parse_rows,
    pending_by_entity,
)
from llm_cost_tracker.budgets._ledger import BUCKET_NS, Aggregate, Dims, SpendLedger
from llm_cost_tracker.budgets._period import period_bounds
from llm_cost_tracker.budgets._seasonal import SeasonalModel
from llm_cost_tracker.budgets._sql import QUERY_SETTINGS, Rollup, detect_rollup, quote, spend_sql
from llm_cost_tracker.budgets._status import BudgetStatus, EntityStatuses, Snapshot, usd
from llm_cost_tracker.i18n import ENGLISH, NP_, Translator
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

log = get_logger("budgets")


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
        self.ledger = ledger if ledger is not None else SpendLedger(self.attribute_keys(budgets),
                                                                    self.entity_keys(budgets))
        self._options = options or BudgetOptions()
        self._clock = clock
        self._client_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None
        self.registry = EntityRegistry(client, self._client_lock)
        self.definitions = BudgetDefinitions(client, self._client_lock)
        self.models: dict[str, SeasonalModel] = {}
        """Hour-of-week forecast models of the plain budgets, refitted by the monitor."""
        self.normalize: Callable[[str, str], str] = lambda _key, value: value
        """(attribute, caller's value) -> the value as stored: the ingest redaction (set by the hook)."""
        self.names = EntityNames()
        """Stored value -> the entity's name past the store (a hash for a value holding a secret; set by the hook)."""
        self.config_names = frozenset(self.budgets)
        """Budgets of the config file: not replaceable through the API."""
        self._rollup: Rollup | None | bool = False  # False: not looked for yet
        self.refresh_errors = 0

    @property
    def client(self) -> Any:
        return self._client

    @property
    def client_lock(self) -> threading.Lock:
        """Held around every call on :attr:`client` (entity admissions, definitions, webhook records too)."""
        return self._client_lock

    @property
    def clock(self) -> Callable[[], int]:
        return self._clock

    @property
    def options(self) -> BudgetOptions:
        return self._options

    def load_stored(self) -> None:
        """Add the budgets managed through the API (a config budget of the same name wins)."""
        for budget in self.definitions.load():
            if budget.name in self.config_names:
                log.warning("stored budget ignored: the config file declares the same name", budget=budget.name)
            else:
                self._install(budget)

    def _install(self, budget: Budget) -> None:
        self.budgets[budget.name] = budget
        self.ledger.extend_keys(self.attribute_keys([budget]), self.entity_keys([budget]))
        self.registry.forget(budget.name)
        self._expire()

    def _expire(self) -> None:
        """The next :meth:`snapshot` reads again; until then fast answers keep the last state (not none)."""
        if self._cached is not None:
            self._cached = (float("-inf"), self._cached[1])

    def put_budget(self, budget: Budget, table: dict[str, Any]) -> bool:
        """Create or replace a budget managed through the API, persisted; True when it is new.

        Raises:
            PermissionError: the config file declares this name.
        """
        if budget.name in self.config_names:
            raise PermissionError(budget.name)
        with self._cache_lock:  # no refresh in progress reads the ledger's keys meanwhile
            self.definitions.save(budget.name, table)
            new = budget.name not in self.budgets
            self._install(budget)
        return new

    def delete_budget(self, name: str) -> bool:
        """Remove a budget managed through the API; False when there is none of that name.

        Raises:
            PermissionError: the config file declares this name.
        """
        if name in self.config_names:
            raise PermissionError(name)
        with self._cache_lock:
            if name not in self.budgets:
                return False
            self.definitions.delete(name)
            del self.budgets[name]
            self.registry.forget(name)
            self._expire()
        return True

    @staticmethod
    def attribute_keys(budgets: list[Budget]) -> tuple[str, ...]:
        return tuple(sorted({k for b in budgets for k, _ in b.scope.attributes}))

    @staticmethod
    def entity_keys(budgets: list[Budget]) -> tuple[str, ...]:
        """The ``each`` attributes of the per-entity budgets (tenant/service/provider/model are dimensions)."""
        return tuple(sorted({b.scope.each for b in budgets if b.per_entity} - {"tenant", "service", "provider",
                                                                                  "model"}))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the service's store client (calls serialised); for the monitor."""
        with self._client_lock:
            if self._rollup is False:
                self._rollup = detect_rollup(self._client)
            return list(self._client.query(sql, settings=QUERY_SETTINGS).result_rows)

    @property
    def rollup(self) -> Rollup | None:
        """The hourly rollup the spend is read from (None: raw spans; not looked for yet: None too)."""
        return self._rollup if isinstance(self._rollup, Rollup) else None

    def _store_spend(self, bounds: Mapping[str, tuple[int, int, int]]
                     ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, tuple[int, int]]]]:
        plain = {n: v for n, v in bounds.items() if not self.budgets[n].per_entity}
        with self._client_lock:
            entities = {name: parse_rows(self._client.query(entity_spend_sql(self.budgets[name], s, w, e),
                                                        settings=QUERY_SETTINGS).result_rows, self.names)
                        for name, (s, w, e) in bounds.items() if self.budgets[name].per_entity}
            if not plain:
                return {}, entities
            if self._rollup is False:
                self._rollup = detect_rollup(self._client)
                log.info("budget spend source", rollup=self._rollup.table if self._rollup else None)
            rollup = self._rollup if isinstance(self._rollup, Rollup) else None
            parts = [f"SELECT {quote(name)} AS budget, * FROM "
                     f"({spend_sql(self.budgets[name].scope, s, w, e, rollup)})" for name, (s, w, e) in plain.items()]
            rows = self._client.query(" UNION ALL ".join(parts), settings=QUERY_SETTINGS).result_rows
        return {name: (int(Decimal(period or 0) * PICO_PER_USD), int(Decimal(window or 0) * PICO_PER_USD))
                for name, period, window in rows}, entities

    def _pending_spend(self, pending: Aggregate, bounds: Mapping[str, tuple[int, int, int]]) -> dict[str, tuple[int, int]]:
        keys = self.ledger.attribute_keys
        bounds = {n: v for n, v in bounds.items() if not self.budgets[n].per_entity}
        matched: dict[Dims, dict[str, bool]] = {}
        out = {name: [0, 0] for name in bounds}
        for (dims, bucket), pusd in pending.items():
            per_budget = matched.get(dims)
            if per_budget is None:
                tenant, service, provider, model, values = dims
                attrs = dict(zip(keys, values[:len(keys)], strict=True))
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
        return self.refresh_all().statuses

    def refresh_all(self) -> Snapshot:
        """Every budget's state now, per-entity ones included; raises StoreUnavailable."""
        now_ns = self._clock()
        if not self.budgets:
            return Snapshot({}, {}, now_ns)  # nothing configured: the API answers an empty list without the store
        now = datetime.fromtimestamp(now_ns / 1e9, UTC)
        bounds: dict[str, tuple[int, int, int]] = {}
        for name, b in self.budgets.items():
            start, end = period_bounds(b.period, b.tz, now)
            s_ns, e_ns = int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9
            bounds[name] = (s_ns, max(s_ns, now_ns - b.burn_window_seconds * 10**9), e_ns)
        try:
            (stored, stored_entities), pending, exact = self.ledger.read(lambda: self._store_spend(bounds))
        except Exception as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        pending_spend = self._pending_spend(pending, bounds)
        statuses = {}
        for name, (s_ns, w_ns, e_ns) in bounds.items():
            if self.budgets[name].per_entity:
                continue
            store_period, store_window = stored.get(name, (0, 0))
            pend_period, pend_window = pending_spend[name]
            model = self.models.get(name)
            statuses[name] = BudgetStatus(
                self.budgets[name], s_ns, e_ns, now_ns, spent_pusd=store_period + pend_period,
                pending_pusd=pend_period, window_pusd=store_window + pend_window, window_ns=now_ns - w_ns,
                exact=exact, expected_rest_pusd=None if model is None else model.expected(now_ns, e_ns))
        entities = {name: self._entity_statuses(self.budgets[name], bounds[name], now_ns, rows, pending, exact)
                    for name, rows in stored_entities.items()}
        return Snapshot(statuses, entities, now_ns)

    def _entity_statuses(self, budget: Budget, bounds: tuple[int, int, int], now_ns: int,
                         stored: dict[str, tuple[int, int]], pending: Aggregate, exact: bool) -> EntityStatuses:
        s_ns, w_ns, e_ns = bounds
        pend = pending_by_entity(budget, pending, self.ledger.attribute_keys, self.ledger.entity_keys, s_ns, w_ns,
                                 e_ns, self.names)
        totals: dict[str, list[int]] = {}
        for source, is_pending in ((stored, False), (pend, True)):
            for entity, (period, window) in source.items():
                slot = totals.setdefault(entity, [0, 0, 0])
                slot[0] += period
                slot[1] += period if is_pending else 0
                slot[2] += window
        with self._client_lock:
            tracked = self.registry.admit(budget, s_ns, {e: v[0] for e, v in totals.items()})
        other = [0, 0, 0]
        out: dict[str, BudgetStatus] = {}
        for entity, (spent, pending_pusd, window) in totals.items():
            if entity in tracked:
                out[entity] = BudgetStatus(budget, s_ns, e_ns, now_ns, spent, pending_pusd, window, now_ns - w_ns,
                                           exact, entity)
            else:
                other = [other[0] + spent, other[1] + pending_pusd, other[2] + window]
        folded = len(totals) - len(out)
        return EntityStatuses(budget, out, BudgetStatus(budget, s_ns, e_ns, now_ns, other[0], other[1], other[2],
                                                        now_ns - w_ns, exact, OTHER), folded)

    def snapshot(self, max_age: float | None = None) -> Snapshot:
        """Every budget's state, re-read when the cached one is older than ``max_age`` seconds."""
        max_age = self._options.refresh_seconds if max_age is None else max_age
        with self._cache_lock:
            if self._cached is not None and time.monotonic() - self._cached[0] <= max_age:
                return self._cached[1]
            try:
                result = self.refresh_all()
            except StoreUnavailable:
                self.refresh_errors += 1
                raise
            self._cached = (time.monotonic(), result)
            return result

    def cached(self) -> tuple[float, Snapshot] | None:
        """The last snapshot and its age in seconds (None before the first), without reading the store."""
        current = self._cached
        return None if current is None else (time.monotonic() - current[0], current[1])

    def statuses(self, max_age: float | None = None) -> dict[str, BudgetStatus]:
        """Every plain budget's status, re-read when the cached one is older than ``max_age`` seconds."""
        return self.snapshot(max_age).statuses

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
        covering = [st for st in self.snapshot().covering(tenant, service, provider, model, attributes, self.names)
                    if visible is None or visible(st.budget)]
        chosen, deciding, depth = model, None, 0
        summary = []
        for st in sorted(covering, key=lambda s: (-s.spent_ratio, s.budget.name)):
            policy = st.budget.downgrade.get(model, ())
            steps = min(st.downgrade_steps(), len(policy)) if policy else 0
            summary.append({"name": st.budget.name, "status": st.status, "spent_ratio": round(st.spent_ratio, 6),
                            "spent_usd": usd(st.spent_pusd), "limit_usd": usd(st.budget.limit_pusd),
                            "downgrade": list(policy), "downgrade_step": steps,
                            **({"entity": st.entity} if st.budget.per_entity else {})})
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
                limit=t.number(usd(worst.budget.limit_pusd)), status=t.pgettext("budget status", worst.status),
                why=why, model=model)
        else:
            b = deciding.budget
            reason = t._("budget {name} is at {ratio} of {limit} USD ({status}, downgrade from {level}); "
                         "step {step} of {steps} in its downgrade list for {model}: use {chosen}").format(
                name=repr(b.name), ratio=t.percent(deciding.spent_ratio), limit=t.number(usd(b.limit_pusd)),
                status=t.pgettext("budget status", deciding.status),
                level=t.percent(b.downgrade_from, decimals=0),
                step=depth, steps=len(b.downgrade[model]), model=model, chosen=chosen)
        return {"model": chosen, "requested_model": model, "downgraded": chosen != model, "reason": reason,
                "budget_exceeded": any(s.status == "exceeded" for s in covering), "budgets": summary}

    def current(self, block: bool = True) -> Snapshot:
        """The state for fast answers (``/v1/check``): the cached snapshot while the background monitor
        keeps it fresh (at most twice ``refresh_seconds`` + 1 s old), else read now; with ``block`` False
        the cached one whatever its age (raises StoreUnavailable before the first)."""
        refresh = self._options.refresh_seconds
        cached = self.cached()
        if cached is not None and (not block or (refresh > 0 and cached[0] <= 2 * refresh + 1)):
            return cached[1]
        if not block:
            raise StoreUnavailable("no budget state read yet")
        return self.snapshot()

    @property
    def answers_from_memory(self) -> bool:
        """Whether the monitor refreshes in the background, so :meth:`current` need never block."""
        return self._options.refresh_seconds > 0
