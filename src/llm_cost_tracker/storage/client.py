"""Open the configured ClickHouse: embedded chDB in ``data_dir``, or a server over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect

from llm_cost_tracker.config import Settings


class StoreLocked(RuntimeError):
    """The embedded store is open in another process (chDB allows one process per data directory)."""


def connect(settings: Settings) -> Any:
    """A clickhouse-connect client for the configured store.

    Raises:
        StoreLocked: the embedded data directory is in use by another process.
    """
    if settings.clickhouse_url:
        tls: dict[str, Any] = {}
        if settings.clickhouse_url.startswith("https://"):
            tls["verify"] = settings.clickhouse_tls_verify
            if settings.clickhouse_ca_file:
                tls["ca_cert"] = settings.clickhouse_ca_file
            if settings.clickhouse_client_cert_file:
                tls["client_cert"] = settings.clickhouse_client_cert_file
                tls["client_cert_key"] = settings.clickhouse_client_key_file or None
        return clickhouse_connect.get_client(dsn=settings.clickhouse_url, database=settings.clickhouse_database,
                                             **tls)
    path = Path(settings.data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    try:
        client = clickhouse_connect.get_client(interface="chdb", path=str(path))
        if settings.clickhouse_database != "default":
            client.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
            client.close()
            client = clickhouse_connect.get_client(interface="chdb", path=str(path),
                                                   database=settings.clickhouse_database)
        return client
    except Exception as exc:
        if "lock" in str(exc).lower():
            raise StoreLocked(
                f"the embedded store {path} is open in another process (is the service running?); "
                "stop it, or query it through a ClickHouse server"
            ) from exc
        raise


def describe(settings: Settings) -> str:
    """Where the store is, for logs (never includes credentials)."""
    if settings.clickhouse_url:
        url = settings.clickhouse_url
        return url.split("@", 1)[-1] if "@" in url else url
    return f"chdb:{Path(settings.data_dir).resolve()}"
