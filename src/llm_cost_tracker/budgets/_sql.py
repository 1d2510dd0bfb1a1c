"""Every SQL statement the budgets read, in one place: spend of a scope over a time range.

Spend is read from the hourly rollup when the store has one (issue 5's materialized views) and the
budget is not scoped by span attributes (rollups do not keep them); the parts of a range that are
not whole hours (a period starting at local midnight in a +05:30 zone, a burn window ending now) are
read from ``llm_spans``, so the answer is the same either way. Without a rollup everything comes
from ``llm_spans``. Switching is :func:`detect_rollup`; nothing else knows the table names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_cost_tracker.budgets._config import Scope
from llm_cost_tracker.storage.client import sql_string

QUERY_SETTINGS = {"max_threads": 1}
"""Every budget read runs on one engine thread: the service's other core stays for ingest and for
``/v1/check`` answers (a refresh of 1,000 entities takes ~20 ms of CPU)."""
RAW_TABLE = "llm_spans"
MODEL_COLUMN = "model"
"""llm_spans.model: the response model, else the request model (a column DEFAULT)."""
RAW_COLUMNS = {"tenant": "tenant", "service": "service_name", "provider": "provider", "model": "model"}

ROLLUP_CANDIDATES = ("llm_spend_hourly", "llm_spans_hourly", "llm_rollup_hourly", "llm_costs_hourly")
"""Hourly rollup table names looked for, in order (the first whose columns fit is used)."""
_TIME_COLUMNS = ("hour", "bucket", "ts", "timestamp", "period_start", "time")
_DIM_COLUMNS = {"tenant": ("tenant",), "service": ("service_name", "service"), "provider": ("provider",),
                "model": ("model", "response_model")}
_COST_COLUMNS = ("cost_usd", "cost", "spend_usd")


quote = sql_string
"""A ClickHouse string literal (``storage.client.sql_string``), under the name the budget modules use."""


@dataclass(frozen=True, slots=True)
class Rollup:
    """An hourly rollup table: where its time bucket, dimensions and cost live."""

    table: str
    time_column: str
    columns: dict[str, str] = field(default_factory=dict)
    cost_sum: str = "sum(cost_usd)"
    bucket_seconds: int = 3600


def detect_rollup(client: Any) -> Rollup | None:
    """The hourly rollup in the client's database, or None when there is none (or it does not fit)."""
    names = ", ".join(quote(n) for n in ROLLUP_CANDIDATES)
    rows = client.query(
        f"SELECT table, name, type FROM system.columns WHERE database = currentDatabase() AND table IN ({names})"
    ).result_rows
    tables: dict[str, dict[str, str]] = {}
    for table, name, kind in rows:
        tables.setdefault(table, {})[name] = kind
    for table in ROLLUP_CANDIDATES:
        cols = tables.get(table)
        if not cols:
            continue
        time_col = next((c for c in _TIME_COLUMNS if c in cols and cols[c].startswith("DateTime")), None)
        dims = {dim: next((c for c in options if c in cols), "") for dim, options in _DIM_COLUMNS.items()}
        cost = next((c for c in _COST_COLUMNS if c in cols), None)
        if time_col is None or cost is None or not all(dims.values()):
            continue
        kind = cols[cost]
        if kind.startswith("AggregateFunction(sum"):
            cost_sum = f"sumMerge({cost})"
        elif kind.startswith(("Decimal", "Nullable(Decimal", "SimpleAggregateFunction(sum")):
            cost_sum = f"sum({cost})"
        else:
            continue
        return Rollup(table, time_col, dims, cost_sum)
    return None


def _filters(scope: Scope, columns: dict[str, str], attributes: bool) -> list[str]:
    out = []
    for dim in ("tenant", "service", "provider", "model"):
        values = getattr(scope, dim)
        if values:
            out.append(f"{columns[dim]} IN ({', '.join(quote(v) for v in values)})")
    if attributes:
        for key, values in scope.attributes:
            out.append(f"attributes[{quote(key)}] IN ({', '.join(quote(v) for v in values)})")
    return out


def _raw_sum(scope: Scope, start_ns: int, end_ns: int) -> str:
    where = [f"timestamp >= fromUnixTimestamp64Nano(toInt64({int(start_ns)}), 'UTC')",
             f"timestamp < fromUnixTimestamp64Nano(toInt64({int(end_ns)}), 'UTC')",
             *_filters(scope, RAW_COLUMNS, attributes=True)]
    return f"SELECT sum(cost_usd) AS c FROM {RAW_TABLE} WHERE {' AND '.join(where)}"


def range_sum_sql(scope: Scope, start_ns: int, end_ns: int, rollup: Rollup | None) -> str:
    """A query whose only row is the spend of ``scope`` in ``[start_ns, end_ns)`` as a decimal string."""
    parts: list[str] = []
    if rollup is not None and not scope.attributes:
        step = rollup.bucket_seconds * 10**9
        first = -(-start_ns // step) * step
        last = end_ns // step * step
        if first < last:
            where = [f"{rollup.time_column} >= toDateTime({first // 10**9}, 'UTC')",
                     f"{rollup.time_column} < toDateTime({last // 10**9}, 'UTC')",
                     *_filters(scope, rollup.columns, attributes=False)]
            parts.append(f"SELECT {rollup.cost_sum} AS c FROM {rollup.table} WHERE {' AND '.join(where)}")
            if start_ns < first:
                parts.append(_raw_sum(scope, start_ns, first))
            if last < end_ns:
                parts.append(_raw_sum(scope, last, end_ns))
    if not parts:
        parts.append(_raw_sum(scope, start_ns, end_ns))
    return f"SELECT toString(sum(c)) FROM ({' UNION ALL '.join(parts)})"


def spend_sql(scope: Scope, start_ns: int, window_ns: int, end_ns: int, rollup: Rollup | None) -> str:
    """One row: spend of ``scope`` in the period ``[start_ns, end_ns)`` and in ``[window_ns, end_ns)``."""
    return (f"SELECT ({range_sum_sql(scope, start_ns, end_ns, rollup)}) AS period_usd, "
            f"({range_sum_sql(scope, window_ns, end_ns, rollup)}) AS window_usd")


def hourly_sql(scope: Scope | None, start_ns: int, rollup: Rollup | None, by_series: bool = False) -> str:
    """Rows ([tenant, service, model,] hour as Unix seconds, spend as a decimal string) since ``start_ns``
    (a whole hour): the scope's hourly spend, or with ``by_series`` every (tenant, service, model)'s."""
    scope = scope or Scope()
    start = start_ns // 10**9
    if rollup is not None and not scope.attributes:
        cols = rollup.columns
        keys = f"{cols['tenant']}, {cols['service']}, {cols['model']}, " if by_series else ""
        where = [f"{rollup.time_column} >= toDateTime({start}, 'UTC')", *_filters(scope, cols, attributes=False)]
        return (f"SELECT {keys}toUnixTimestamp({rollup.time_column}) AS h, toString({rollup.cost_sum}) "
                f"FROM {rollup.table} WHERE {' AND '.join(where)} GROUP BY {keys}h")
    keys = "tenant, service_name, model, " if by_series else ""
    where = [f"timestamp >= toDateTime64({start}, 9, 'UTC')", *_filters(scope, RAW_COLUMNS, attributes=True)]
    return (f"SELECT {keys}toUnixTimestamp(toStartOfHour(timestamp)) AS h, toString(sum(cost_usd)) "
            f"FROM {RAW_TABLE} WHERE {' AND '.join(where)} GROUP BY {keys}h")


def unpriced_sql(start_ns: int) -> str:
    """One row: spans since ``start_ns`` no price entry matched (unknown model, as LLMUnpricedSpans), and up to 5 models."""
    return (f"SELECT count(), groupUniqArray(5)(model) FROM {RAW_TABLE} "
            f"WHERE timestamp >= fromUnixTimestamp64Nano(toInt64({int(start_ns)}), 'UTC') "
            f"AND pricing_status = 'unpriced'")
