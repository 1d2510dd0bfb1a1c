"""Migrations: idempotent, rendered for a cluster, retention brought in line with the settings."""

from __future__ import annotations

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.storage.migrate import bundled_migrations, drifted, migrate, render


def engine_full(store, table: str) -> str:
    return store.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows[0][0]


def test_fresh_database_dry_run_lists_everything_and_creates_nothing(store_settings) -> None:
    """A dry run on an empty database reports every migration and creates no table."""
    from llm_cost_tracker.storage.client import connect

    client = connect(store_settings)
    try:
        pending = migrate(client, dry_run=True)
        assert [m.version for m in pending] == [m.version for m in bundled_migrations()]
        assert client.query("SHOW TABLES").result_rows == []
        assert migrate(client) == pending
        assert migrate(client) == []
        assert drifted(client) == []
    finally:
        client.command(f"DROP DATABASE IF EXISTS `{store_settings.clickhouse_database}` SYNC")
        client.close()


def test_every_table_and_view_is_created(store) -> None:
    """The raw table, both rollups with their views and the reprice audit tables exist."""
    tables = {r[0] for r in store.query("SHOW TABLES").result_rows}
    assert {"llm_spans", "llm_spend_hourly", "llm_spend_daily", "llm_spend_hourly_mv", "llm_spend_daily_mv",
            "reprice_runs", "reprice_audit", "schema_migrations"} <= tables
    assert "non_replicated_deduplication_window = 1000" in engine_full(store, "llm_spans")
    assert "non_replicated_deduplication_window = 1000" in engine_full(store, "llm_spend_hourly")


def test_ttl_follows_the_settings(store) -> None:
    """TTLs are set from the ttl_*_days settings, changed when they change, removed at 0, and not re-applied."""
    settings = Settings(ttl_raw_days=30, ttl_hourly_days=90, ttl_daily_days=0)
    migrate(store, settings=settings)
    assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in engine_full(store, "llm_spans")
    assert "TTL hour + toIntervalDay(90)" in engine_full(store, "llm_spend_hourly")
    assert "TTL" not in engine_full(store, "llm_spend_daily")
    from llm_cost_tracker.storage.migrate import retention_statements

    assert retention_statements(store, settings) == []
    migrate(store, settings=settings.replace(ttl_raw_days=0, ttl_hourly_days=120))
    assert "TTL" not in engine_full(store, "llm_spans")
    assert "toIntervalDay(120)" in engine_full(store, "llm_spend_hourly")


def test_cluster_rendering() -> None:
    """With a cluster name every CREATE/ALTER gets ON CLUSTER and every MergeTree becomes Replicated."""
    statements = [s for m in bundled_migrations() for s in m.statements("prod")]
    for statement in statements:
        assert " ON CLUSTER `prod`" in statement.split("\n", 1)[0]
        if "ENGINE = " in statement:
            assert "ENGINE = Replicated" in statement
            assert "'/clickhouse/tables/{shard}/{database}/" in statement and "'{replica}')" in statement
    spans = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS llm_spans"))
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/llm_spans', '{replica}')" in spans
    hourly = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS llm_spend_hourly "))
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/llm_spend_hourly'" in hourly
    assert render("ALTER TABLE llm_spans REMOVE TTL", "c1") == "ALTER TABLE llm_spans ON CLUSTER `c1` REMOVE TTL"
    with pytest.raises(ValueError):
        render("ALTER TABLE x REMOVE TTL", "bad name; DROP")


def test_cluster_name_is_validated() -> None:
    """A cluster name that is not an identifier is a configuration error."""
    from llm_cost_tracker.config import ConfigError

    with pytest.raises(ConfigError, match="clickhouse_cluster"):
        Settings(clickhouse_cluster="x y").validate()
    with pytest.raises(ConfigError, match="ttl_raw_days"):
        Settings(ttl_raw_days=-1).validate()


def test_cli_migrate_dry_run_prints_cluster_ddl(tmp_path) -> None:
    """``migrate --dry-run --cluster prod`` prints the replicated DDL and creates no table."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "migrate", "--dry-run", "--cluster", "prod",
                          "--data-dir", str(tmp_path / "db")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "CREATE TABLE IF NOT EXISTS llm_spans ON CLUSTER `prod`" in out.stdout
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/llm_spend_daily'" in out.stdout
    again = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "migrate", "--data-dir", str(tmp_path / "db")],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0001_llm_spans" in again.stdout, again.stderr


def test_schema_doc_shows_the_cluster_ddl_the_code_renders() -> None:
    """docs/schema.md holds exactly the statements ``migrate --dry-run --cluster prod`` prints."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()
    for migration in bundled_migrations():
        for statement in migration.statements("prod"):
            assert statement + ";" in doc, statement.split("\n", 1)[0]
