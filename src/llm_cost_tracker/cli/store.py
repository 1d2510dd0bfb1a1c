"""``migrate``, ``reprice`` and ``forget``: change what the store holds."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from llm_cost_tracker.cli._common import add_config_flag, add_format_flag, add_store_flags, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the ClickHouse schema (also done at start-up)",
                       description="Apply the pending schema migrations and bring TTLs in line with the "
                                   "settings. --dry-run prints the DDL instead (docs/schema.md).")
    p.add_argument("--dry-run", action="store_true", help="print the statements that would run, change nothing")
    p.add_argument("--cluster", dest="clickhouse_cluster", metavar="NAME",
                   help="render the DDL ON CLUSTER NAME with Replicated engines (setting clickhouse_cluster)")
    add_config_flag(p)
    add_store_flags(p)
    p.set_defaults(func=_migrate)

    p = sub.add_parser("reprice", help="recompute stored costs and rollups after a price correction",
                       description="Reprice the spans stored since DATE with the current catalog (and "
                                   "--pricing-file), set-wise: one mutation, rollup deltas, an audit row per "
                                   "changed span in reprice_audit.")
    p.add_argument("--since", required=True, help="first day (UTC) to reprice, e.g. 2026-03-01, or an ISO time")
    p.add_argument("--model", default="", help="only spans of this model (model or pricing_model)")
    p.add_argument("--pricing-file", metavar="FILE", help="price overrides (TOML or YAML) holding the correction")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    add_config_flag(p)
    add_store_flags(p)
    add_format_flag(p)
    p.set_defaults(func=_reprice)

    p = sub.add_parser("forget", help="erase one person's spans (GDPR) and correct the rollups",
                       description="Delete every span whose enduser.id or user.id attribute is USER, subtract "
                                   "them from the hourly and daily rollups, and record the erasure in "
                                   "forget_audit (by the id's SHA-256 only).")
    p.add_argument("--user", required=True, metavar="USER", help="the person's enduser.id / user.id value")
    p.add_argument("--dry-run", action="store_true", help="count what would be erased, change nothing")
    add_config_flag(p)
    add_store_flags(p)
    p.set_defaults(func=_forget)


def _connect(args: argparse.Namespace) -> tuple[Any, Any] | int:
    from llm_cost_tracker.storage.client import StoreLocked, StoreMissing, connect

    settings = settings_from(args)
    try:  # migrate creates the store; reprice and forget need one that exists
        return settings, connect(settings.store, create=args.func is _migrate)
    except (StoreLocked, StoreMissing) as exc:
        print(f"llm-cost-tracker: {exc}", file=sys.stderr)
        return 2


def _migrate(args: argparse.Namespace) -> int:
    from llm_cost_tracker.storage.migrate import drifted, migrate, retention_statements

    opened = _connect(args)
    if isinstance(opened, int):
        return opened
    settings, client = opened
    cluster = settings.clickhouse_cluster
    try:
        for migration in drifted(client):
            print(f"warning: migration {migration.version:04d}_{migration.name} changed since it was applied",
                  file=sys.stderr)
        if args.dry_run:
            pending = migrate(client, dry_run=True, settings=settings.store)
            for migration in pending:
                print(f"-- {migration.version:04d}_{migration.name}")
                for statement in migration.statements(cluster):
                    print(statement + ";\n")
            has_tables = bool(client.query("EXISTS TABLE llm_spans").result_rows[0][0])
            ttl = retention_statements(client, settings, cluster) if has_tables else []
            for statement in ttl:
                print(statement + ";\n")
            if not pending and not ttl:
                print("-- schema is up to date")
            return 0
        applied = migrate(client, settings=settings.store)
    except Exception as exc:
        print(f"llm-cost-tracker: migrate failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "nothing to apply"
    print(f"migrated: {names}")
    return 0


def _reprice(args: argparse.Namespace) -> int:
    from llm_cost_tracker.cli._output import render
    from llm_cost_tracker.pricing import PriceCatalog
    from llm_cost_tracker.report import parse_time
    from llm_cost_tracker.storage.reprice import reprice
    from llm_cost_tracker.transforms.price import Price

    try:
        since = parse_time(args.since, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        print(f"llm-cost-tracker: --since: {exc}", file=sys.stderr)
        return 2
    opened = _connect(args)
    if isinstance(opened, int):
        return opened
    settings, client = opened
    if settings.clickhouse_cluster:
        print("llm-cost-tracker: reprice does not support clusters yet (its Join-table lookup is per node)",
              file=sys.stderr)
        client.close()
        return 2
    try:
        catalog = PriceCatalog.load(settings.pricing_file or None)
        result = reprice(client, Price(lambda: catalog), since, args.model, dry_run=args.dry_run)
        rows: list[list[Any]] = []
        if result.changed and not result.dry_run:
            rows = [list(r) for r in client.query(
                "SELECT model, count() AS spans, sum(copies * ifNull(old_cost_usd, 0)) AS old_usd, "
                "sum(copies * ifNull(new_cost_usd, 0)) AS new_usd, new_usd - old_usd AS delta_usd "
                "FROM reprice_audit WHERE run_id = {r:String} GROUP BY model ORDER BY abs(delta_usd) DESC, model",
                parameters={"r": result.run_id}).result_rows]
    except Exception as exc:
        print(f"llm-cost-tracker: reprice failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    verb = "would change" if result.dry_run else "changed"
    print(f"run {result.run_id}: {result.spans} spans since {since.isoformat()} looked at, {result.changed} {verb}, "
          f"cost delta {result.cost_delta_usd.normalize():f} USD", file=sys.stderr)
    if rows:
        print(render(["model", "spans", "old_cost_usd", "new_cost_usd", "delta_usd"], rows, args.format))
    return 0


def _forget(args: argparse.Namespace) -> int:
    from llm_cost_tracker.storage.forget import forget
    from llm_cost_tracker.storage.migrate import migrate

    opened = _connect(args)
    if isinstance(opened, int):
        return opened
    settings, client = opened
    try:
        migrate(client, settings=settings.store)
        result = forget(client, args.user, dry_run=args.dry_run)
    finally:
        client.close()
    verb = "would erase" if result.dry_run else "erased"
    print(f"{verb} {result.spans} span(s) costing {result.cost_usd.normalize():f} USD "
          f"(run {result.run_id}, user sha256 {result.user_sha256[:12]}...)")
    return 0
