"""``GET /v1/spend?by=model|service|provider|tenant|day&since=&until=``: spend from the rollups, as JSON.

The query is :class:`~llm_cost_tracker.report.ReportQuery`'s, so the figures are ``report``'s: same
table choice (daily for whole days, else hourly), same widening to whole buckets, same columns.
Money is exact decimal text (``"0.15008625"``), counts are integers.

Access: with tokens configured every call needs one (``Authorization: Bearer``); a tenant's token sees
its own spend only (its tenant is the filter, and its query runs under the SQL endpoint's engine row
filter too); an admin may pass ``tenant=`` to narrow. Errors are ``{"error": ...}`` with 400, 401, 403
or 503.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from llm_cost_tracker.access.guard import REFUSED_MESSAGE, AccessGuard, http_principal
from llm_cost_tracker.httpserver import HttpServer, Request, Response
from llm_cost_tracker.report import COLUMNS, GROUPINGS, ReportQuery, parse_time
from llm_cost_tracker.sql_http import Policy

__all__ = ["SpendApi"]
_MONEY = {"cost_usd", "cache_savings_usd"}


def _money(value: Any) -> str:
    number = Decimal(str(value))
    return format(number.normalize(), "f") if number else "0"


class SpendApi:
    """The ``/v1/spend`` handler.

    Args:
        engine: the SQL endpoint's engine (embedded store), or None to read through ``client``.
        client: the service's store client (a ClickHouse server), used when there is no engine.
        guard: authenticates callers (None: everyone is admin).
    """

    def __init__(self, engine: Any, client: Any, guard: AccessGuard | None) -> None:
        self._engine = engine
        self._client = client
        self._guard = guard
        self._lock = threading.Lock()

    def register(self, http: HttpServer) -> None:
        http.route("GET", "/v1/spend", self.spend)

    def spend(self, request: Request) -> Response:
        principal = http_principal(self._guard, request.headers)
        if principal is None:
            return Response.json(401, {"error": REFUSED_MESSAGE})
        args = {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        unknown = sorted(set(args) - {"by", "since", "until", "tenant"})
        if unknown:
            return Response.json(400, {"error": f"unknown parameters {unknown} (known: by, since, until, tenant)"})
        by = args.get("by", "model")
        if by not in GROUPINGS:
            return Response.json(400, {"error": f"by must be one of {', '.join(GROUPINGS)}, got {by!r}"})
        now = dt.datetime.now(dt.UTC)
        try:
            since = parse_time(args.get("since") or "24h", now)
            until = parse_time(args["until"], now) if args.get("until") else None
        except ValueError as exc:
            return Response.json(400, {"error": str(exc)})
        tenant = args.get("tenant")
        if principal.tenant is not None:
            if tenant not in (None, principal.tenant.name):
                return Response.json(403, {"error": "a tenant token reads its own tenant's spend only"})
            tenant = principal.tenant.name
        query = ReportQuery(by, since, until, tenant)
        sql, params = query.sql()
        try:
            columns, rows = self._rows(sql, params, principal.tenant.name if principal.tenant else None)
        except Exception as exc:
            return Response.json(503, {"error": f"cannot read spend from the store: {exc}; retry shortly"})
        out = [{c: (_money(v) if c in _MONEY else v) for c, v in zip(columns, row, strict=True)} for row in rows]
        return Response.json(200, {"by": by, "since": since.isoformat(), "until": until.isoformat() if until else None,
                                   "table": query.table, "tenant": tenant, "columns": [by, *COLUMNS], "rows": out})

    def _rows(self, sql: str, params: dict[str, Any], tenant: str | None) -> tuple[list[str], list[list[Any]]]:
        if self._engine is not None:
            policy = Policy(tenant, 30.0, 1_000_000, 256 * 1024 * 1024, 1024 * 1024 * 1024, 1)
            result = self._engine.run(sql, "JSONCompact", policy, params={k: str(v) for k, v in params.items()},
                                      settings={"output_format_json_quote_64bit_integers": "0",
                                                "output_format_json_quote_decimals": "1"})
            data = json.loads(result.body)
            return [m["name"] for m in data["meta"]], data["data"]
        with self._lock:
            result = self._client.query(sql, parameters=params)
        return list(result.column_names), [[v.isoformat() if isinstance(v, dt.date) else v for v in row]
                                           for row in result.result_rows]
