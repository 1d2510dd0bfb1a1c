"""``sql`` and ``report``: read what the service stored."""

from __future__ import annotations

import argparse
import sys

from llm_cost_tracker.cli._common import add_config_flag, add_format_flag, add_store_flags, settings_from
from llm_cost_tracker.cli._output import render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sql", help="run a SQL query against the store",
                       description="Run SQL against the configured store. The embedded store can be "
                                   "opened by one process at a time: stop the service first.")
    p.add_argument("query", help="the SQL to run")
    add_config_flag(p)
    add_store_flags(p)
    add_format_flag(p)
    p.set_defaults(func=_sql)

    p = sub.add_parser("report", help="spend and tokens grouped by model, service, provider, tenant or day")
    p.add_argument("--by", choices=("model", "service", "provider", "tenant", "day"), default="model")
    p.add_argument("--since", default="24h", help="window, like 30m, 24h or 7d (default 24h)")
    add_config_flag(p)
    add_store_flags(p)
    add_format_flag(p)
    p.set_defaults(func=_report)


def _query(args: argparse.Namespace, sql: str) -> int:
    from llm_cost_tracker.storage.client import StoreLocked, connect

    settings = settings_from(args)
    try:
        client = connect(settings)
    except StoreLocked as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2
    try:
        result = client.query(sql)
    except Exception as exc:
        print(f"llm-cost-tracker: query failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(render(result.column_names, result.result_rows, args.format))
    return 0


def _sql(args: argparse.Namespace) -> int:
    return _query(args, args.query)


def _report(args: argparse.Namespace) -> int:
    from llm_cost_tracker.report import ReportQuery, parse_since

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"llm-cost-tracker: --since: {exc}", file=sys.stderr)
        return 2
    return _query(args, ReportQuery(args.by, since).sql())
