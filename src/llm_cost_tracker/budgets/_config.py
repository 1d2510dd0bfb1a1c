"""Budgets from the ``[[budgets]]`` tables of the config file, validated with every problem reported.

A budget names a scope (tenant, service, provider, model and/or span attributes; each a value or a
list of values, unset = any), a calendar period in a time zone, a limit in USD (exact: kept as
integer pico-USD), warning thresholds and an optional downgrade policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from llm_cost_tracker.budgets._period import PERIODS
from llm_cost_tracker.budgets._seasonal import AnomalyOptions
from llm_cost_tracker.config import ConfigError
from llm_cost_tracker.types import PICO_PER_USD

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)
DEFAULT_BURN_WINDOW_SECONDS = 6 * 3600
DEFAULT_REFRESH_SECONDS = 5.0
DEFAULT_MAX_ENTITIES = 1000
SCOPE_KEYS = ("tenant", "service", "provider", "model", "attributes", "each")
BUDGET_KEYS = {"name", "scope", "period", "timezone", "limit_usd", "thresholds", "downgrade",
               "downgrade_from", "burn_window", "description", "max_entities"}
OPTION_KEYS = {"refresh_seconds"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([mhd])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class BudgetConfigError(ConfigError):
    """Every problem found in the budgets section, one per line."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which spans a budget counts: every set dimension must match (values within one are alternatives)."""

    tenant: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    provider: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    each: str = ""
    """One budget per distinct value of this span/resource attribute (or tenant, service, provider,
    model); empty: one budget for the whole scope."""

    def matches(self, tenant: str, service: str, provider: str, model: str,
                attributes: Mapping[str, str]) -> bool:
        """Whether a span (or call) with these values is inside the scope."""
        for allowed, value in ((self.tenant, tenant), (self.service, service),
                               (self.provider, provider), (self.model, model)):
            if allowed and value not in allowed:
                return False
        return all(attributes.get(key) in values for key, values in self.attributes)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: list(getattr(self, k)) for k in SCOPE_KEYS[:4] if getattr(self, k)}
        if self.attributes:
            out["attributes"] = {k: list(v) for k, v in self.attributes}
        if self.each:
            out["each"] = self.each
        return out


@dataclass(frozen=True, slots=True)
class Budget:
    """One validated budget."""

    name: str
    limit_pusd: int
    period: str = "month"
    timezone: str = "UTC"
    scope: Scope = field(default_factory=Scope)
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    downgrade: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    downgrade_from: float = DEFAULT_THRESHOLDS[0]
    burn_window_seconds: int = DEFAULT_BURN_WINDOW_SECONDS
    description: str = ""
    max_entities: int = DEFAULT_MAX_ENTITIES
    """Per-entity budgets: distinct values tracked one by one per period; later ones fold into ``other``."""
    source: str = "config"
    """Where the budget was declared: ``config`` (the file) or ``api`` (PUT /v1/budgets/{name})."""

    @property
    def per_entity(self) -> bool:
        return bool(self.scope.each)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class BudgetOptions:
    """The ``[budget_options]`` table: how often spend is re-read from the store."""

    refresh_seconds: float = DEFAULT_REFRESH_SECONDS


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        problems.append(f"{where}: expected a non-empty string or list of non-empty strings, got {value!r}")
        return ()
    return tuple(dict.fromkeys(items))


def _scope(raw: Any, where: str, problems: list[str]) -> Scope:
    if raw is None:
        return Scope()
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table, got {raw!r}")
        return Scope()
    for key in sorted(raw.keys() - set(SCOPE_KEYS)):
        problems.append(f"{where}: unknown key {key!r} (known: {', '.join(SCOPE_KEYS)})")
    values = {k: _strings(raw[k], f"{where}.{k}", problems) for k in SCOPE_KEYS[:4] if k in raw}
    attrs: list[tuple[str, tuple[str, ...]]] = []
    if "attributes" in raw:
        if not isinstance(raw["attributes"], dict) or not raw["attributes"]:
            problems.append(f"{where}.attributes: expected a non-empty table of attribute = value(s)")
        else:
            attrs = [(k, _strings(v, f"{where}.attributes.{k}", problems)) for k, v in sorted(raw["attributes"].items())]
    each = raw.get("each", "")
    if not isinstance(each, str) or ("each" in raw and not each.strip()):
        problems.append(f"{where}.each: expected an attribute name like 'user.id' (or 'tenant'), got {each!r}")
        each = ""
    return Scope(attributes=tuple(attrs), each=each.strip(), **values)


def parse_limit(raw: Any) -> int:
    """USD (number or decimal string) -> exact pico-USD; raises ValueError if not a positive amount."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"expected a number of USD, got {raw!r}")
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise ValueError(f"expected a number of USD, got {raw!r}") from exc
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    pico = amount * PICO_PER_USD
    if pico != pico.to_integral_value():
        raise ValueError(f"more than 12 decimal places: {raw!r}")
    return int(pico)


def _ratio(raw: Any) -> float:
    if isinstance(raw, str) and raw.strip().endswith("%"):
        value = float(raw.strip()[:-1]) / 100
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    else:
        raise ValueError(f"expected a fraction like 0.8 or a percentage like '80%', got {raw!r}")
    if not 0 < value <= 10:
        raise ValueError(f"must be in (0, 10] (a fraction of the limit), got {raw!r}")
    return value


def parse_duration(raw: Any) -> int:
    """Seconds in ``30m``, ``6h`` or ``2d`` (or a number of seconds); raises ValueError otherwise."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    match = _DURATION.match(str(raw).strip()) if isinstance(raw, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration like 30m, 6h or 2d, got {raw!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _downgrade(raw: Any, where: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table of model = [cheaper models, in order], got {raw!r}")
        return {}
    policy: dict[str, tuple[str, ...]] = {}
    for model, steps in raw.items():
        steps_where = f"{where}.{model}"
        if isinstance(steps, str):
            steps = [steps]
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s for s in steps):
            problems.append(f"{steps_where}: expected a non-empty list of model names, got {steps!r}")
            continue
        if model in steps:
            problems.append(f"{steps_where}: a model cannot downgrade to itself")
        if len(set(steps)) != len(steps):
            problems.append(f"{steps_where}: lists a model twice: {steps!r}")
        policy[model] = tuple(steps)
    return policy


def _budget(raw: Any, index: int, problems: list[str]) -> Budget | None:
    where = f"budgets[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table ([[budgets]]), got {raw!r}")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}.name: required; letters, digits, '_', '.', '-' (max 64), got {name!r}")
        name = f"#{index}"
    else:
        where = f"budgets[{index}] ({name})"
    start = len(problems)
    for key in sorted(raw.keys() - BUDGET_KEYS):
        problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(BUDGET_KEYS))})")
    limit = 0
    if "limit_usd" not in raw:
        problems.append(f"{where}.limit_usd: required")
    else:
        try:
            limit = parse_limit(raw["limit_usd"])
        except ValueError as exc:
            problems.append(f"{where}.limit_usd: {exc}")
    period = raw.get("period", "month")
    if period not in PERIODS:
        problems.append(f"{where}.period: must be one of {', '.join(PERIODS)}, got {period!r}")
    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        problems.append(f"{where}.timezone: unknown IANA time zone {timezone!r} (e.g. 'Europe/Berlin')")
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    if "thresholds" in raw:
        given = raw["thresholds"]
        if not isinstance(given, list) or not given:
            problems.append(f"{where}.thresholds: expected a non-empty list, got {given!r}")
        else:
            parsed = []
            for value in given:
                try:
                    parsed.append(_ratio(value))
                except ValueError as exc:
                    problems.append(f"{where}.thresholds: {exc}")
            thresholds = tuple(sorted(set(parsed))) or DEFAULT_THRESHOLDS
    downgrade = _downgrade(raw["downgrade"], f"{where}.downgrade", problems) if "downgrade" in raw else {}
    downgrade_from = thresholds[0]
    if "downgrade_from" in raw:
        try:
            downgrade_from = _ratio(raw["downgrade_from"])
        except ValueError as exc:
            problems.append(f"{where}.downgrade_from: {exc}")
        if not downgrade:
            problems.append(f"{where}.downgrade_from: set without a downgrade policy")
    burn = DEFAULT_BURN_WINDOW_SECONDS
    if "burn_window" in raw:
        try:
            burn = parse_duration(raw["burn_window"])
        except ValueError as exc:
            problems.append(f"{where}.burn_window: {exc}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}.description: expected a string")
    scope = _scope(raw.get("scope"), f"{where}.scope", problems)
    max_entities = raw.get("max_entities", DEFAULT_MAX_ENTITIES)
    if isinstance(max_entities, bool) or not isinstance(max_entities, int) or not 1 <= max_entities <= 100_000:
        problems.append(f"{where}.max_entities: expected an integer in 1..100000, got {max_entities!r}")
    elif "max_entities" in raw and not scope.each:
        problems.append(f"{where}.max_entities: set without [budgets.scope] each")
    if len(problems) > start:
        return None
    return Budget(name=name, limit_pusd=limit, period=period, timezone=timezone, scope=scope,
                  thresholds=thresholds, downgrade=downgrade, downgrade_from=downgrade_from,
                  burn_window_seconds=burn, description=description, max_entities=max_entities)


def parse_budget(raw: Any, name: str) -> Budget:
    """One budget from a JSON/TOML table (``PUT /v1/budgets/{name}``); ``name`` is the path's.

    Raises:
        BudgetConfigError: listing every problem of the table.
    """
    problems: list[str] = []
    if isinstance(raw, dict):
        if raw.get("name", name) != name:
            problems.append(f"name: {raw['name']!r} differs from the path's {name!r}")
        raw = {**raw, "name": name}
    budget = _budget(raw, 0, problems)
    if problems or budget is None:
        raise BudgetConfigError([p.replace("budgets[0] ", "").replace("budgets[0]", "budget") for p in problems])
    return replace(budget, source="api")


def parse_budgets(sections: Mapping[str, Any]) -> tuple[list[Budget], BudgetOptions]:
    """The budgets and options in the config file's tables (see :func:`config.config_sections`).

    Raises:
        BudgetConfigError: listing every problem found, not just the first.
    """
    problems: list[str] = []
    raw_budgets = sections.get("budgets", [])
    if isinstance(raw_budgets, dict):
        problems.append("budgets: write each budget as a [[budgets]] table (an array of tables), not [budgets]")
        raw_budgets = []
    budgets = [b for i, raw in enumerate(raw_budgets) if (b := _budget(raw, i, problems)) is not None]
    names: list[str] = [raw["name"] for raw in raw_budgets if isinstance(raw, dict) and isinstance(raw.get("name"), str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"budgets: the name {name!r} is used {names.count(name)} times")
    options = BudgetOptions()
    raw_options = sections.get("budget_options", {})
    if not isinstance(raw_options, dict):
        problems.append("budget_options: expected a table")
    else:
        for key in sorted(raw_options.keys() - OPTION_KEYS):
            problems.append(f"budget_options: unknown key {key!r} (known: {', '.join(sorted(OPTION_KEYS))})")
        refresh = raw_options.get("refresh_seconds", DEFAULT_REFRESH_SECONDS)
        if isinstance(refresh, bool) or not isinstance(refresh, int | float) or refresh < 0:
            problems.append(f"budget_options.refresh_seconds: expected a number >= 0, got {refresh!r}")
        else:
            options = BudgetOptions(float(refresh))
    if problems:
        raise BudgetConfigError(problems)
    return budgets, options


ANOMALY_KEYS = {"enabled", "z", "ratio", "min_usd", "weeks", "recent_hours", "interval_seconds", "max_series"}


def parse_anomalies(sections: Mapping[str, Any]) -> AnomalyOptions:
    """The ``[anomalies]`` table (defaults without one); raises BudgetConfigError listing every problem."""
    raw = sections.get("anomalies", {})
    if not isinstance(raw, dict):
        raise BudgetConfigError(["anomalies: expected a table"])
    problems = [f"anomalies: unknown key {k!r} (known: {', '.join(sorted(ANOMALY_KEYS))})"
                for k in sorted(raw.keys() - ANOMALY_KEYS)]
    values: dict[str, Any] = {}
    for key, kind, low in (("z", float, 1.0), ("ratio", float, 1.0), ("weeks", int, 3), ("recent_hours", int, 6),
                           ("interval_seconds", float, 1.0), ("max_series", int, 1)):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)) \
                    or value < low:
                problems.append(f"anomalies.{key}: expected {'an integer' if kind is int else 'a number'} >= {low:g}, "
                                f"got {value!r}")
            else:
                values[key] = kind(value)
    if "enabled" in raw:
        if not isinstance(raw["enabled"], bool):
            problems.append(f"anomalies.enabled: expected true or false, got {raw['enabled']!r}")
        else:
            values["enabled"] = raw["enabled"]
    if "min_usd" in raw:
        try:
            values["min_usd_pusd"] = parse_limit(raw["min_usd"])
        except ValueError as exc:
            problems.append(f"anomalies.min_usd: {exc}")
    if problems:
        raise BudgetConfigError(problems)
    return AnomalyOptions(**values)
