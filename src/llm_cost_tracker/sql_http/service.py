"""The SQL endpoint's lifecycle inside the all-in-one service: engine, listener and endpoint record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_cost_tracker.access.tls import ReloadingSslContext, TlsFiles
from llm_cost_tracker.config import SqlHttpConfig, StoreConfig
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.ports import ensure_free
from llm_cost_tracker.sql_http._engine import SqlEngine
from llm_cost_tracker.storage import endpoint as discovery

__all__ = ["SqlEndpoint"]
log = get_logger("sql_http")


class SqlEndpoint:
    """Serves the embedded store read-only over the ClickHouse HTTP interface while the service runs.

    Use :meth:`from_config` (None when the store is a ClickHouse server, which has its own endpoint), then
    :meth:`start` once the store is migrated, :meth:`stop` before it closes. With ``sql_http`` off the
    endpoint serves nothing but its engine still answers ``/v1/spend``.

    Args:
        config: the endpoint's section (``settings.sql``).
        store: the embedded store's section (``settings.store``): where the engine reads.
        tls: the listeners' TLS files (``settings.access.tls()``), or None for plaintext.
        tokens: the reloadable token table the listeners use.
    """

    def __init__(self, config: SqlHttpConfig, store: StoreConfig, tls: TlsFiles | None, tokens: Any) -> None:
        self.config = config
        self.data_dir = store.data_dir
        self.tls = tls
        self.tokens = tokens
        self.engine = SqlEngine(str(Path(store.data_dir).resolve()), store.clickhouse_database)
        self.server: Any = None

    @classmethod
    def from_config(cls, config: SqlHttpConfig, store: StoreConfig, tls: TlsFiles | None,
                    tokens: Any) -> SqlEndpoint | None:
        """The endpoint over an embedded ``store`` (its port checked free), or None for a ClickHouse server."""
        if not store.embedded:
            return None
        endpoint = cls(config, store, tls, tokens)
        if config.enabled:
            ensure_free("sql_http", config.sql_http)
        return endpoint

    def start(self) -> None:
        if not self.config.enabled:
            return
        # the aiohttp server is loaded only when the endpoint serves (readers use the engine alone)
        from llm_cost_tracker.sql_http.server import SqlHttpServer

        self.server = SqlHttpServer(self.config, self.engine, lambda: self.tokens.current,
                                    ReloadingSslContext(self.tls) if self.tls else None)
        self.server.start()
        discovery.record(self.data_dir, self.server.scheme, self.server.host, self.server.port)
        log.info("SQL endpoint serving", sql_http=f"{self.server.host}:{self.server.port}",
                 auth="tokens" if self.tokens.current.enabled else "none (loopback only)")

    @property
    def port(self) -> int:
        return self.server.port if self.server is not None else 0

    def stop(self) -> None:
        if self.server is not None:
            discovery.forget(self.data_dir)
            self.server.stop()
            self.server = None
