"""``sql`` and ``report``: read what the service stored."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any

from llm_cost_tracker.cli._common import (
    add_config_flag,
    add_format_flag,
    add_lang_flag,
    add_store_flags,
    settings_from,
)
from llm_cost_tracker.cli._output import render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sql", help="run a SQL query against the store",
                       description="Run SQL against the configured store. While the service holds the embedded "
                                   "store, the query goes through its read-only SQL endpoint (--sql-http).")
    p.add_argument("query", help="the SQL to run")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="value of a {NAME:Type} query parameter (repeatable), as in docs/queries.md")
    add_config_flag(p)
    add_store_flags(p)
    add_format_flag(p)
    p.set_defaults(func=_sql)

    p = sub.add_parser("report", help="spend and tokens grouped by model, service, provider, tenant or day",
                       description="Spend, requests and tokens from the hourly/daily rollups. Times are UTC; "
                                   "a window is widened to whole hours (whole days when both ends are dates).")
    p.add_argument("--by", choices=("model", "service", "provider", "tenant", "day", "job-batch"), default="model",
                   help="job-batch: planned against actual cost and duration of every planned job and batch "
                        "(docs/scheduler.md); --since/--until select plans by when they were made")
    p.add_argument("--batch", metavar="ID", help="with --by job-batch: only this batch")
    p.add_argument("--since", default="24h",
                   help="start: a duration before now (30m, 24h, 7d) or a date/time (2026-03-01) (default 24h)")
    p.add_argument("--until", help="end (exclusive), same forms as --since (default: now)")
    p.add_argument("--tenant", help="only this tenant")
    add_config_flag(p)
    add_store_flags(p)
    add_format_flag(p)
    add_lang_flag(p)
    p.set_defaults(func=_report)


def _job_batch(args: argparse.Namespace, since: dt.datetime) -> int:
    """Planned vs actual per job, then per batch (spans matched by ``scheduler_job_id_attribute``)."""
    from llm_cost_tracker.storage.client import StoreLocked, StoreMissing, connect_reader
    from llm_cost_tracker.storage.plans import batch_totals, planned_vs_actual

    settings = settings_from(args)
    try:
        client = connect_reader(settings)
    except (StoreLocked, StoreMissing) as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2
    try:
        jobs = planned_vs_actual(client, settings.scheduler_job_id_attribute, batch_id=args.batch,
                                 tenant=args.tenant, since=since)
    except Exception as exc:
        print(f"llm-cost-tracker: query failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}",
              file=sys.stderr)
        return 1
    finally:
        client.close()
    job_cols = ["batch_id", "job", "model", "tier", "planned_cost_usd", "actual_cost_usd", "planned_seconds",
                "actual_seconds", "spans", "unpriced_spans", "job_id"]
    batch_cols = ["batch_id", "name", "jobs", "jobs_seen", "planned_cost_usd", "actual_cost_usd", "planned_seconds",
                  "actual_seconds", "spans", "unpriced_spans"]
    batches = batch_totals(jobs)
    if args.format == "json":
        import json

        from llm_cost_tracker.cli._output import _plain

        print(json.dumps({"jobs": [{c: _plain(j[c]) for c in job_cols} for j in jobs],
                          "batches": [{c: _plain(b[c]) for c in batch_cols} for b in batches]}, indent=2))
        return 0
    print(render(job_cols, [[j[c] for c in job_cols] for j in jobs], args.format))
    print()
    print(render(batch_cols, [[b[c] for c in batch_cols] for b in batches], args.format))
    return 0


def _query(args: argparse.Namespace, sql: str, parameters: dict[str, Any] | None = None, render: Any = render) -> int:
    from llm_cost_tracker.storage.client import StoreLocked, StoreMissing, connect_reader

    settings = settings_from(args)
    try:
        client = connect_reader(settings)  # the store, or the running service's SQL endpoint
    except (StoreLocked, StoreMissing) as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2
    try:
        result = client.query(sql, parameters=parameters or None)
    except Exception as exc:
        print(f"llm-cost-tracker: query failed: {_engine_error(client, sql, parameters, exc)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(render(result.column_names, result.result_rows, args.format))
    return 0


_ENGINE_PREFIX = re.compile(r"^Code: (\d+)\. DB::Exception: ")


def _engine_error(client: Any, sql: str, parameters: dict[str, Any] | None, exc: Exception) -> str:
    """The engine's complaint about the user's own text.

    The client appends ``FORMAT Native`` to a query, and a broken query often fails *there* ("failed at
    position 25 (FORMAT)", or an unknown identifier FORMAT): text the user never typed. A query that
    failed before running is asked again as written (a raw query appends nothing), so the position and
    the message point at what the user wrote. Nothing runs twice: only a failed query is re-asked.
    """
    text = str(exc)
    if "FORMAT" in text and "FORMAT" not in sql.upper():
        try:
            client.raw_query(sql, parameters=parameters or None)
        except Exception as again:
            text = str(again)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    code = _ENGINE_PREFIX.match(text)
    if code:
        text = text[code.end():]
        if code.group(1) == "60" and "'llm_" in text:  # one of our tables is missing: the wrong store?
            text += " (has the service stored anything in this store? see --data-dir)"
    return text


def _sql(args: argparse.Namespace) -> int:
    parameters = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"llm-cost-tracker: --param: expected NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        parameters[name] = value
    return _query(args, args.query, parameters)


def _report(args: argparse.Namespace) -> int:
    from llm_cost_tracker.report import ReportQuery, parse_time

    now = dt.datetime.now(dt.UTC)
    try:
        since = parse_time(args.since, now)
        until = parse_time(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2
    if args.by == "job-batch":
        return _job_batch(args, since)
    sql, parameters = ReportQuery(args.by, since, until, args.tenant).sql()
    from llm_cost_tracker.i18n import cli_translator, report_renderer

    renderer = report_renderer(cli_translator(settings_from(args).lang if args.format == "table" else "en"), render)
    return _query(args, sql, parameters, renderer)
