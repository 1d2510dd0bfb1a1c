"""Versioned, idempotent schema migrations, recorded in the ``schema_migrations`` table.

Migrations are the numbered ``migrations/NNNN_name.sql`` files shipped in the package: the single
source of the DDL. Each applies once; applying again is a no-op, on chDB and on a server alike.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

MIGRATIONS_TABLE = "schema_migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """The file's statements, comments removed, split on ';' at line ends."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def bundled_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("llm_cost_tracker.storage").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def applied_versions(client: Any) -> set[int]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version UInt32, name String, checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    return {int(row[0]) for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}


def migrate(client: Any, dry_run: bool = False) -> list[Migration]:
    """Apply the pending migrations in order; returns those applied (or that would be, with ``dry_run``)."""
    done = applied_versions(client)
    pending = [m for m in bundled_migrations() if m.version not in done]
    if dry_run:
        return pending
    for migration in pending:
        for statement in migration.statements():
            client.command(statement)
        client.insert(MIGRATIONS_TABLE, [[migration.version, migration.name, migration.checksum]],
                      column_names=["version", "name", "checksum"])
    return pending
