"""A read-only ClickHouse HTTP interface over the embedded store, while the service runs (docs/sql-endpoint.md).

The server (``sql_http.server``, aiohttp) is imported by the service only; this package's top level is
light: the service imports the HTTP stack only when the endpoint serves. Its settings are
:class:`~llm_cost_tracker.config.SqlHttpConfig` (``settings.sql``), checked by the config layer.
"""

from __future__ import annotations

from llm_cost_tracker.config import SqlHttpConfig
from llm_cost_tracker.sql_http._engine import Result, SqlEngine
from llm_cost_tracker.sql_http._errors import SqlError
from llm_cost_tracker.sql_http._sandbox import Policy

__all__ = ["Policy", "Result", "SqlEngine", "SqlError", "SqlHttpConfig"]
