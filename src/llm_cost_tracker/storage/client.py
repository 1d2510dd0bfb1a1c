"""Open the configured ClickHouse: embedded chDB in ``data_dir``, or a server over HTTP."""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver import options as driver_options

from llm_cost_tracker.config import Settings, StoreConfig, config_sections
from llm_cost_tracker.storage.endpoint import find

__all__ = ["DEDUP_SETTINGS", "StoreLocked", "StoreMissing", "connect", "connect_reader", "describe", "is_embedded",
           "sql_string"]

DEDUP_SETTINGS = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}
"""Per-insert settings that make a token-carrying insert idempotent in llm_spans and its rollups (the
sink's batches, and the rollup deltas of ``reprice`` and ``forget``)."""

_OPENED: set[Path] = set()
"""Embedded stores this process has opened (chDB keeps one engine per process; reopening is fine)."""


class StoreLocked(RuntimeError):
    """The embedded store is open in another process (chDB allows one process per data directory)."""


class StoreMissing(RuntimeError):
    """A reader asked for an embedded store that does not exist (it would otherwise open an empty one)."""


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds the engine's lock on ``path/status`` (the lock ClickHouse takes).

    Probed before chDB opens the directory: chDB would print its own "Cannot lock file" line and raise
    an error that does not say why. Only for directories this process has not opened itself, since an
    flock taken through a second descriptor conflicts with our own engine too.
    """
    status = path / "status"
    if path in _OPENED or not status.exists():
        return False
    try:
        with open(status, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _without_pandas() -> None:
    """Tell clickhouse-connect that pandas is absent, before its first insert asks.

    Every ``client.insert`` checks whether its data is a pandas DataFrame, and to check, the driver
    imports pandas (installed as a dependency of chDB): 0.6-0.8 s of CPU and ~36 MiB in every process
    that inserts a row, the service at its first migration included. Nothing here passes DataFrames
    or asks for them back (rows are lists, batches Arrow), so the driver's answer to "is pandas
    there?" is set to "no" (the value it records itself when the import fails). A driver that
    has already looked keeps its answer.
    """
    if "pd" not in vars(driver_options):
        driver_options.pd = None
        driver_options.pd_time_test = None


def sql_string(text: str) -> str:
    """``text`` as a ClickHouse string literal (backslashes and quotes escaped): for what a statement cannot take as
    a bound parameter (a file path in ``FROM INFILE`` or ``file()``, a setting, a policy's filter)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_embedded(client: Any) -> bool:
    """Whether ``client`` is the embedded store (chDB, in this process) rather than a server: the writers pick
    their statements by it (temporary files chDB reads itself: the insert's rows and span identity's keys; its allocator's purge)."""
    return type(client).__name__ == "ChdbClient"


def connect(settings: StoreConfig | Settings, *, create: bool = True) -> Any:
    """A clickhouse-connect client for the configured store.

    Args:
        settings: where the store is: its section (``settings.store``), or whole settings (their store section).
        create: create an embedded store that does not exist yet (the service does; readers such as
            ``report`` and ``sql`` pass False, so a wrong directory is an error, not an empty store).

    Raises:
        StoreLocked: the embedded data directory is in use by another process.
        StoreMissing: ``create`` is False and there is no embedded store at ``data_dir``.
    """
    settings = StoreConfig.of(settings)
    _without_pandas()
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
    if not create and not (path / "metadata").is_dir():
        raise StoreMissing(
            f"no store at {path}: nothing has been stored there. Run this from the directory the service runs "
            "in, or pass --data-dir DIR (env: LCT_DATA_DIR)")
    if _held_elsewhere(path):
        raise StoreLocked(_locked_message(path))
    path.mkdir(parents=True, exist_ok=True)
    try:
        client = clickhouse_connect.get_client(interface="chdb", path=str(path))
        if settings.clickhouse_database != "default":
            client.command(f"CREATE DATABASE IF NOT EXISTS `{settings.clickhouse_database}`")
            client.close()
            client = clickhouse_connect.get_client(interface="chdb", path=str(path),
                                                   database=settings.clickhouse_database)
        _OPENED.add(path)
        return client
    except Exception as exc:
        if "lock" in str(exc).lower() or _held_elsewhere(path):
            raise StoreLocked(_locked_message(path)) from exc
        raise


def connect_reader(settings: Settings) -> Any:
    """A client for readers (``report``, ``sql``): the store itself, or the running service's SQL endpoint.

    The embedded store is opened by one process; while the service holds it, it serves the store
    read-only over the ClickHouse HTTP interface and records where in the data directory
    (:mod:`llm_cost_tracker.storage.endpoint`). The reader then queries through that endpoint, with
    the admin token of the same settings (``LCT_AUTH_TOKEN`` or the first ``[auth] admin_tokens`` entry).

    Raises:
        StoreLocked: the store is held by a process that serves no SQL endpoint (``sql_http = off``).
        StoreMissing: there is no embedded store at ``data_dir``.
    """
    try:
        return connect(settings, create=False)
    except StoreLocked as exc:
        endpoint = find(str(Path(settings.data_dir).resolve()))
        if endpoint is None:
            raise StoreLocked(
                f"{exc}; a service started with its SQL endpoint (--sql-http, on by default) is queried through "
                "it instead") from exc
    kwargs: dict[str, Any] = {}
    if endpoint.secure:
        kwargs["secure"] = True
        # the endpoint is this machine's own service on loopback (its certificate rarely names 127.0.0.1):
        # encrypted, not verified; a CA given for ClickHouse (clickhouse_ca_file) is used when set
        kwargs["verify"] = bool(settings.clickhouse_ca_file)
        if settings.clickhouse_ca_file:
            kwargs["ca_cert"] = settings.clickhouse_ca_file
        if settings.clickhouse_client_cert_file:
            kwargs["client_cert"] = settings.clickhouse_client_cert_file
            kwargs["client_cert_key"] = settings.clickhouse_client_key_file or None
    return clickhouse_connect.get_client(host=endpoint.host, port=endpoint.port, username="default",
                                         password=_admin_token(settings), database=settings.clickhouse_database,
                                         **kwargs)


def _admin_token(settings: Settings) -> str:
    if settings.auth_token:
        return settings.auth_token
    tokens = config_sections(settings.config_file).get("auth", {}).get("admin_tokens", [])
    return str(tokens[0]) if tokens else ""


def _locked_message(path: Path) -> str:
    return (f"the embedded store {path} is in use by another process, most likely the running service; stop it "
            "(Ctrl-C flushes every accepted span) and run this again, or store in a ClickHouse server "
            "(--clickhouse-url) to query while it runs")


def describe(settings: StoreConfig | Settings) -> str:
    """Where the store is, for logs (never includes credentials)."""
    if settings.clickhouse_url:
        url = settings.clickhouse_url
        return url.split("@", 1)[-1] if "@" in url else url
    return f"chdb:{Path(settings.data_dir).resolve()}"
