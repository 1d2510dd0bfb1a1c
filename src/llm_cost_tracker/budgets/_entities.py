"""Per-entity budgets (``[budgets.scope] each = "user.id"``): one limit per distinct value, bounded.

A per-entity budget has one status per entity (value of its ``each`` attribute) in the current
period. Spend per entity is read from ``llm_spans`` (grouped by the value) plus the ledger, exactly
like a plain budget. Cardinality is bounded per budget and period: the first ``max_entities`` values
(in order of admission; within one refresh the biggest spenders first) are tracked one by one and
the rest are folded into ``other``. Admissions are persisted in ``budget_entities`` (migration 0010),
so a restart tracks the same entities; spend itself is never stored twice.

Values are what the store holds: after redaction (a key in mode ``hash`` is ``hmac-sha256:...``, a
detected secret its placeholder), so no secret is listed. A caller's value (``/v1/check``) is passed
through the same redaction first (:attr:`BudgetService.normalize`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_cost_tracker.budgets._config import Budget
from llm_cost_tracker.budgets._ledger import BUCKET_NS, Aggregate
from llm_cost_tracker.budgets._sql import RAW_COLUMNS, RAW_TABLE, _filters, quote
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import PICO_PER_USD

__all__ = ["OTHER", "EntityNames", "EntityRegistry", "entity_expression", "entity_spend_sql",
           "pending_by_entity"]

log = get_logger("budgets")
OTHER = "other"
"""The bucket of the values past a budget's ``max_entities`` in a period."""
ENTITIES_TABLE = "budget_entities"


def entity_expression(each: str) -> str:
    """The ``llm_spans`` expression of an entity: a column for tenant/service/provider/model, else the
    span attribute, else the resource attribute of that name (the ledger reads records the same way)."""
    if each in RAW_COLUMNS:
        return RAW_COLUMNS[each]
    return f"if(attributes[{quote(each)}] != '', attributes[{quote(each)}], resource_attributes[{quote(each)}])"


def entity_spend_sql(budget: Budget, start_ns: int, window_ns: int, end_ns: int) -> str:
    """Rows (entity, period spend, window spend) of ``budget``'s scope in ``[start_ns, end_ns)``, decimal
    strings; spans without a value belong to no entity. Unpriced and duplicate rows have a NULL cost."""
    expr = entity_expression(budget.scope.each)
    where = [f"timestamp >= fromUnixTimestamp64Nano(toInt64({int(start_ns)}), 'UTC')",
             f"timestamp < fromUnixTimestamp64Nano(toInt64({int(end_ns)}), 'UTC')",
             *_filters(budget.scope, RAW_COLUMNS, attributes=True)]
    window = f"timestamp >= fromUnixTimestamp64Nano(toInt64({int(window_ns)}), 'UTC')"
    return (f"SELECT {expr} AS entity, toString(sum(cost_usd)), toString(sumIf(cost_usd, {window})) "
            f"FROM {RAW_TABLE} WHERE {' AND '.join(where)} GROUP BY entity HAVING entity != ''")


def _pusd(text: Any) -> int:
    return int(Decimal(text or 0) * PICO_PER_USD)


class EntityNames:
    """What an entity is called everywhere past the store: its value, or ``sha256:<hex>`` when the value
    holds a key, token or card number (whatever the redaction policy; ``scan = "off"`` stores values
    in clear), so the API, the metrics, the webhooks and ``budget_entities`` never show one.

    Args:
        holds_secret: whether a value holds a secret (the detectors of the ingest scrubber); None: never.
    """

    _LIMIT = 8192

    def __init__(self, holds_secret: Callable[[str], bool] | None = None) -> None:
        self._holds_secret = holds_secret
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        if self._holds_secret is None:
            return value
        name = self._cache.get(value)
        if name is None:
            name = ("sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
                    if self._holds_secret(value) else value)
            if len(self._cache) >= self._LIMIT:
                self._cache.clear()
            self._cache[value] = name
        return name


def parse_rows(rows: Iterable[tuple[Any, ...]], names: Callable[[str], str] = str) -> dict[str, tuple[int, int]]:
    """Store rows (entity, period, window) -> {name: (period, window)} in pico-USD (names may merge)."""
    out: dict[str, tuple[int, int]] = {}
    for entity, period, window in rows:
        name = names(str(entity))
        old = out.get(name, (0, 0))
        out[name] = (old[0] + _pusd(period), old[1] + _pusd(window))
    return out


def pending_by_entity(budget: Budget, pending: Aggregate, attribute_keys: tuple[str, ...],
                      entity_keys: tuple[str, ...], start_ns: int, window_ns: int,
                      end_ns: int, names: Callable[[str], str] = str) -> dict[str, tuple[int, int]]:
    """Accepted-not-stored spend of ``budget`` per entity: (in the period, in the burn window)."""
    each = budget.scope.each
    dim_index = {"tenant": 0, "service": 1, "provider": 2, "model": 3}.get(each)
    value_index = len(attribute_keys) + entity_keys.index(each) if dim_index is None else -1
    out: dict[str, list[int]] = {}
    for (dims, bucket), pusd in pending.items():
        tenant, service, provider, model, values = dims
        entity = dims[dim_index] if dim_index is not None else values[value_index]
        t0 = bucket * BUCKET_NS
        if not entity or not (start_ns <= t0 < end_ns):
            continue
        attrs = dict(zip(attribute_keys, values[:len(attribute_keys)], strict=True))
        if not budget.scope.matches(tenant, service, provider, model, attrs):
            continue
        slot = out.setdefault(names(str(entity)), [0, 0])
        slot[0] += pusd
        if t0 + BUCKET_NS > window_ns:
            slot[1] += pusd
    return {k: (v[0], v[1]) for k, v in out.items()}


class EntityRegistry:
    """Which entities each per-entity budget tracks in a period; persisted in ``budget_entities``.

    Args:
        client: the budget service's store client (None: in memory only).
        lock: serialises calls on ``client`` (shared with the budget service).
    """

    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._client = client
        self._lock = lock
        self._admitted: dict[tuple[str, int], set[str]] = {}

    def _load(self, budget: str, period_start_ns: int) -> set[str]:
        if self._client is None:
            return set()
        rows = self._client.query(
            f"SELECT entity FROM {ENTITIES_TABLE} FINAL WHERE budget = {quote(budget)} "
            f"AND period_start = toDateTime({period_start_ns // 10**9}, 'UTC')").result_rows
        return {str(r[0]) for r in rows}

    def admit(self, budget: Budget, period_start_ns: int, spend: Mapping[str, int]) -> set[str]:
        """The entities tracked one by one, after admitting new values of ``spend`` (entity -> spend) while
        there is room, biggest spenders first. Called with the client lock held."""
        key = (budget.name, period_start_ns)
        admitted = self._admitted.get(key)
        if admitted is None:
            for old in [k for k in self._admitted if k[0] == budget.name]:
                del self._admitted[old]  # an earlier period: its entities are no longer needed in memory
            admitted = self._admitted[key] = self._load(budget.name, period_start_ns)
        room = budget.max_entities - len(admitted)
        new = sorted((e for e in spend if e not in admitted and e != OTHER), key=lambda e: (-spend[e], e))[:max(room, 0)]
        if new:
            if self._client is not None:
                start = datetime.fromtimestamp(period_start_ns // 10**9, UTC).replace(tzinfo=None)
                self._client.insert(ENTITIES_TABLE, [[budget.name, start, e] for e in new],
                                    column_names=["budget", "period_start", "entity"])
            admitted.update(new)
        return admitted

    def forget(self, budget: str) -> None:
        for key in [k for k in self._admitted if k[0] == budget]:
            del self._admitted[key]
