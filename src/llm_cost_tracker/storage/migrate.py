"""Versioned, idempotent schema migrations, recorded in the ``schema_migrations`` table.

Migrations are the numbered ``migrations/NNNN_name.sql`` files shipped in the package: the single
source of the DDL, written for one node (chDB or a single server). With a cluster name the same
statements are rendered with ``ON CLUSTER`` and ``Replicated*MergeTree`` engines (see
docs/schema.md). Each migration applies once; applying again is a no-op, on chDB and on a server alike.

Retention (TTL) is not part of a migration: it is a setting, so it is brought in line with the
configuration on every run (``ALTER TABLE ... MODIFY TTL`` / ``REMOVE TTL`` only when it differs).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

MIGRATIONS_TABLE = "schema_migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
_CREATE = re.compile(r"^(CREATE (?:TABLE|MATERIALIZED VIEW|VIEW|DICTIONARY) IF NOT EXISTS )([A-Za-z_][\w.]*)")
_ALTER = re.compile(r"^(ALTER TABLE |DROP (?:TABLE|VIEW) IF EXISTS )([A-Za-z_][\w.]*)")
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree\b(?!\s*\()")
ZOOKEEPER_PATH = "/clickhouse/tables/{shard}/{database}/%s"

# table -> (settings field holding its TTL in days, column the TTL is computed from)
RETENTION = {
    "llm_spans": ("ttl_raw_days", "toDateTime(timestamp)"),
    "llm_spend_hourly": ("ttl_hourly_days", "hour"),
    "llm_spend_daily": ("ttl_daily_days", "day"),
}
_TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, cluster: str = "") -> list[str]:
        """The file's statements, comments removed, split on ';' at line ends; rendered for ``cluster``."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [render(s.strip(), cluster) for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def check_cluster_name(cluster: str) -> None:
    """Raise ValueError unless ``cluster`` is empty or a plain ClickHouse cluster name."""
    if cluster and not _CLUSTER_NAME.match(cluster):
        raise ValueError(f"not a cluster name: {cluster!r}")


def render(statement: str, cluster: str = "") -> str:
    """``statement`` for a cluster: ``ON CLUSTER`` on CREATE/ALTER/DROP, Replicated engines with a Keeper path.

    The Keeper path is ``/clickhouse/tables/{shard}/{database}/<table>`` with the ``{replica}`` macro,
    both expanded by each server from its ``macros`` configuration.
    """
    if not cluster:
        return statement
    check_cluster_name(cluster)
    on = f" ON CLUSTER `{cluster}`"
    match = _CREATE.match(statement) or _ALTER.match(statement)
    if not match:
        return statement
    table = match.group(2).rsplit(".", 1)[-1]
    statement = statement[: match.end()] + on + statement[match.end():]
    return _ENGINE.sub(lambda m: f"ENGINE = Replicated{m.group(1)}MergeTree('{ZOOKEEPER_PATH % table}', '{{replica}}')",
                       statement)


def bundled_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("llm_cost_tracker.storage").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrations_table_ddl(cluster: str = "") -> str:
    return render(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version",
        cluster,
    )


def applied(client: Any, cluster: str = "", *, create: bool = True) -> dict[int, str]:
    """Applied versions and the checksum each was applied with (creates the migrations table if needed)."""
    if create:
        client.command(migrations_table_ddl(cluster))
    elif not client.query(f"EXISTS TABLE {MIGRATIONS_TABLE}").result_rows[0][0]:
        return {}
    rows = client.query(f"SELECT version, any(checksum) FROM {MIGRATIONS_TABLE} GROUP BY version").result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def applied_versions(client: Any) -> set[int]:
    return set(applied(client))


def drifted(client: Any) -> list[Migration]:
    """Applied migrations whose bundled file has changed since (the database has the old DDL)."""
    done = applied(client, create=False)
    return [m for m in bundled_migrations() if m.version in done and done[m.version] != m.checksum]


def _setting(settings: Any, name: str, default: Any) -> Any:
    return getattr(settings, name, default) if settings is not None else default


def retention_statements(client: Any, settings: Any, cluster: str = "") -> list[str]:
    """``ALTER TABLE`` statements that bring each table's TTL in line with ``settings`` (0 days = keep)."""
    if settings is None:
        return []
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": list(RETENTION)},
    ).result_rows
    current: dict[str, int] = {}
    for name, engine_full in rows:
        match = _TTL_DAYS.search(engine_full)
        current[name] = int(match.group(1)) if match else 0
    out = []
    for table, (field_name, column) in RETENTION.items():
        want = int(getattr(settings, field_name, 0) or 0)
        have = current.get(table, 0)
        if want == have:
            continue
        if want:
            out.append(render(f"ALTER TABLE {table} MODIFY TTL {column} + toIntervalDay({want})", cluster))
        else:
            out.append(render(f"ALTER TABLE {table} REMOVE TTL", cluster))
    return out


def migrate(client: Any, dry_run: bool = False, *, settings: Any = None) -> list[Migration]:
    """Apply the pending migrations in order; returns those applied (or that would be, with ``dry_run``).

    Args:
        client: a clickhouse-connect client on the target database.
        dry_run: only report what is pending.
        settings: the store section (:class:`~llm_cost_tracker.config.StoreConfig`, ``settings.store``) or
            whole settings; its ``clickhouse_cluster`` renders the DDL for a cluster and its ``ttl_*_days``
            set retention. ``None``: one node, no TTL change.
    """
    cluster = _setting(settings, "clickhouse_cluster", "")
    check_cluster_name(cluster)
    done = applied(client, cluster, create=not dry_run)
    pending = [m for m in bundled_migrations() if m.version not in done]
    if dry_run:
        return pending
    for migration in pending:
        for statement in migration.statements(cluster):
            client.command(statement)
        client.insert(MIGRATIONS_TABLE, [[migration.version, migration.name, migration.checksum]],
                      column_names=["version", "name", "checksum"])
    for statement in retention_statements(client, settings, cluster):
        client.command(statement)
    return pending
