"""The SQL endpoint's lifecycle inside the all-in-one service: engine, listener and endpoint record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_cost_tracker.config import Settings
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sql_http._config import SqlHttpConfig
from llm_cost_tracker.sql_http._engine import SqlEngine
from llm_cost_tracker.storage import endpoint as discovery

__all__ = ["SqlEndpoint"]
log = get_logger("sql_http")


class SqlEndpoint:
    """Serves the embedded store read-only over the ClickHouse HTTP interface while the service runs.

    Use :meth:`open` (None when the store is a ClickHouse server, which has its own endpoint, or when
    ``sql_http`` is off), then :meth:`start` once the store is migrated, :meth:`stop` before it closes.
    """

    def __init__(self, settings: Settings, config: SqlHttpConfig, tokens: Any) -> None:
        self.settings = settings
        self.config = config
        self.tokens = tokens
        self.engine = SqlEngine(str(Path(settings.data_dir).resolve()), settings.clickhouse_database)
        self.server: Any = None

    @classmethod
    def open(cls, settings: Settings, tokens: Any) -> SqlEndpoint | None:
        config = SqlHttpConfig.from_settings(settings)
        if settings.clickhouse_url:
            return None
        endpoint = cls(settings, config, tokens)
        if not config.enabled:
            return endpoint  # the engine still serves /v1/spend
        from llm_cost_tracker.ports import ensure_free

        ensure_free("sql_http", config.address)
        return endpoint

    def start(self) -> None:
        if not self.config.enabled:
            return
        from llm_cost_tracker.access.setup import tls_files
        from llm_cost_tracker.access.tls import ReloadingSslContext
        from llm_cost_tracker.sql_http.server import SqlHttpServer

        files = tls_files(self.settings)
        self.server = SqlHttpServer(self.config, self.engine, lambda: self.tokens.current,
                                    ReloadingSslContext(files) if files else None)
        self.server.start()
        discovery.record(self.settings.data_dir, self.server.scheme, self.server.host, self.server.port)
        log.info("SQL endpoint serving", sql_http=f"{self.server.host}:{self.server.port}",
                 auth="tokens" if self.tokens.current.enabled else "none (loopback only)")

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    def stop(self) -> None:
        if self.server is not None:
            discovery.forget(self.settings.data_dir)
            self.server.stop()
            self.server = None
