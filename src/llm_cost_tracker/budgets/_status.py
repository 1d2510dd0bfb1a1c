"""What a refresh computes: a budget's status in its period, per-entity tables and the snapshot of all.

Amounts are exact integer pico-USD; JSON shows USD rounded to 6 decimals (``usd``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_cost_tracker.budgets._config import Budget
from llm_cost_tracker.types import PICO_PER_USD

__all__ = ["BudgetStatus", "EntityStatuses", "Snapshot", "iso", "usd"]


def usd(pusd: int) -> float:
    return round(pusd / PICO_PER_USD, 6)


def iso(ns: int) -> str:
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
    entity: str = ""
    """The entity of a per-entity budget (``other``: the values past its ``max_entities``)."""
    expected_rest_pusd: int | None = None
    """Spend expected from now to the period's end by the hour-of-week model (None: straight line)."""

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
        """End-of-period spend: spent + the hour-of-week model's expectation for the rest of the period when
        there is one (a week of history), else spent + the recent window's burn rate x time left."""
        if self.expected_rest_pusd is not None:
            return self.spent_pusd + max(0, self.expected_rest_pusd)
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
        out = {
            "name": b.name, "description": b.description, "scope": b.scope.describe(),
            "period": b.period, "timezone": b.timezone,
            "period_start": iso(self.period_start_ns), "period_end": iso(self.period_end_ns),
            "limit_usd": usd(b.limit_pusd), "spent_usd": usd(self.spent_pusd),
            "remaining_usd": usd(self.remaining_pusd), "projected_usd": usd(self.projected_pusd),
            "pending_usd": usd(self.pending_pusd),
            "spent_ratio": round(self.spent_ratio, 6), "remaining_ratio": round(self.remaining_ratio, 6),
            "burn_rate_usd_per_hour": round(self.burn_pusd_per_second * 3600 / PICO_PER_USD, 6),
            "burn_window_seconds": self.window_ns // 10**9,
            "status": self.status, "thresholds": list(b.thresholds),
            "thresholds_crossed": list(self.thresholds_crossed),
            "downgrade": {m: list(s) for m, s in b.downgrade.items()},
            "as_of": iso(self.as_of_ns), "exact": self.exact, "source": b.source,
            "forecast": "linear" if self.expected_rest_pusd is None else "seasonal",
        }
        if b.per_entity:
            out["entity"] = self.entity
        return out


@dataclass(frozen=True, slots=True)
class EntityStatuses:
    """A per-entity budget in its current period: a status per tracked entity, and ``other``."""

    budget: Budget
    entities: dict[str, BudgetStatus]
    other: BudgetStatus
    folded: int
    """Distinct values folded into ``other`` this period (seen in the store, not tracked)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every budget's state as of one refresh."""

    statuses: dict[str, BudgetStatus]
    entities: dict[str, EntityStatuses]
    as_of_ns: int

    def covering(self, tenant: str, service: str, provider: str, model: str,
                 attributes: Mapping[str, str], names: Callable[[str], str] = str) -> list[BudgetStatus]:
        """The statuses of the budgets covering a call; for a per-entity budget the call's entity's, when the
        call names one (``attributes[each]``, or its tenant/service/provider/model) and it is tracked.

        Args:
            names: stored value -> entity name (:class:`budgets._entities.EntityNames`).
        """
        out = [st for st in self.statuses.values()
               if st.budget.scope.matches(tenant, service, provider, model, attributes)]
        dims = {"tenant": tenant, "service": service, "provider": provider, "model": model}
        for table in self.entities.values():
            scope = table.budget.scope
            entity = dims[scope.each] if scope.each in dims else attributes.get(scope.each, "")
            if entity and scope.matches(tenant, service, provider, model, attributes):
                st = table.entities.get(names(entity))
                if st is not None:
                    out.append(st)
        return out
