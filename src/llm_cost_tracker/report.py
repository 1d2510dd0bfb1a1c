"""Spend reports from the rollups: the SQL behind ``llm-cost-tracker report``.

A report reads ``llm_spend_daily`` when its window is whole UTC days and ``llm_spend_hourly``
otherwise; a window is widened to whole buckets (a ``--since 90m`` report starts at the top of the
hour). Columns and their order are fixed, so ``--format json`` is stable for scripts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

GROUPINGS = ("model", "service", "provider", "tenant", "day")
_KEYS = {"model": "model", "service": "service_name", "provider": "provider", "tenant": "tenant"}
COLUMNS = ("requests", "cost_usd", "cache_savings_usd", "unpriced_requests", "input_tokens", "output_tokens",
           "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> int:
    """Seconds in a duration like ``90m``, ``24h`` or ``7d``; raises ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"expected a duration like 30m, 24h or 7d, got {text!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """A UTC instant from a duration before ``now`` (``7d``), a date (``2026-03-01``) or an ISO time.

    Raises:
        ValueError: ``text`` is none of these.
    """
    text = text.strip()
    if _DURATION.match(text):
        return now - dt.timedelta(seconds=parse_since(text))
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a duration (24h, 7d), a date (2026-03-01) or an ISO time, got {text!r}") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _midnight(value: dt.datetime | None) -> bool:
    return value is None or value.time() == dt.time(0)


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """One report: spend grouped ``by`` one dimension over ``[since, until)``, optionally for one tenant."""

    by: str
    since: dt.datetime
    until: dt.datetime | None = None
    tenant: str | None = None

    @property
    def table(self) -> str:
        return "llm_spend_daily" if _midnight(self.since) and _midnight(self.until) else "llm_spend_hourly"

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The query and its parameters: one row per group, most expensive first (``day``: oldest first)."""
        if self.by not in GROUPINGS:
            raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
        daily = self.table == "llm_spend_daily"
        bucket = "day" if daily else "hour"
        key = ("day" if daily else "toDate(hour)") if self.by == "day" else _KEYS[self.by]
        start = "toDate({since:DateTime('UTC')})" if daily else "toStartOfHour({since:DateTime('UTC')})"
        where = [f"{bucket} >= {start}"]
        params: dict[str, Any] = {"since": _naive(self.since)}
        if self.until is not None:
            where.append(f"{bucket} < {{until:DateTime('UTC')}}")
            params["until"] = _naive(self.until)
        if self.tenant is not None:
            where.append("tenant = {tenant:String}")
            params["tenant"] = self.tenant
        order = "day" if self.by == "day" else f"cost_usd DESC, requests DESC, {self.by}"
        sql = (
            f"SELECT {key} AS {self.by}, sum(requests) AS requests, sum(cost_usd) AS cost_usd, "
            "sum(cache_savings_usd) AS cache_savings_usd, sum(unpriced_requests) AS unpriced_requests, "
            "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
            "sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, "
            "sum(reasoning_tokens) AS reasoning_tokens "
            f"FROM {self.table} WHERE {' AND '.join(where)} "
            f"GROUP BY {self.by} ORDER BY {order}"
        )
        return sql, params


def _naive(value: dt.datetime) -> str:
    """A UTC instant as ClickHouse's DateTime text (whole seconds)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
