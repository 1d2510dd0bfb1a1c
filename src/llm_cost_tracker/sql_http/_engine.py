"""Runs one caller's query on the service's own chDB engine, on a session of its own.

chDB keeps one engine per process; every ``connect`` to the same path opens a new session on that
engine (about 0.1 ms), with its own settings. Each query gets a fresh gate session (parse checks) and a
fresh query session, both put in read-only mode with the caller's :class:`Policy` first, so nothing a
caller sends can outlive its query or loosen its sandbox. The engine runs queries of several sessions
in parallel (it releases the GIL), beside the service's own inserts.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_cost_tracker.sql_http._errors import from_engine
from llm_cost_tracker.sql_http._sandbox import (
    Policy,
    check_ast,
    check_tables,
    parse_ast,
    quote,
    split_format,
)

__all__ = ["Result", "SqlEngine"]


@dataclass(frozen=True, slots=True)
class Result:
    """A query's output and what ClickHouse reports about it (``X-ClickHouse-Summary``)."""

    body: bytes
    format: str
    query_id: str
    rows_read: int
    bytes_read: int
    elapsed_ns: int

    def summary(self) -> dict[str, str]:
        return {"read_rows": str(self.rows_read), "read_bytes": str(self.bytes_read), "written_rows": "0",
                "written_bytes": "0", "total_rows_to_read": str(self.rows_read), "result_rows": "0",
                "result_bytes": str(len(self.body)), "elapsed_ns": str(self.elapsed_ns)}


def _escaped(text: str) -> str:
    """A query parameter's value in the escaped text form the engine parses (as ``param_`` values over HTTP)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


class SqlEngine:
    """Sandboxed reads on the embedded store at ``path`` (the directory the service opened).

    Args:
        path: the embedded store's directory (resolved like clickhouse-connect resolves it).
        database: the store's database (``clickhouse_database``).
    """

    def __init__(self, path: str, database: str) -> None:
        self.path = os.path.realpath(path)
        self.database = database
        from chdb import _chdb

        # chdb's bundled _chdb stub omits connect (the extension has it): a connection is Any here
        self._connect: Callable[[str], Any] = _chdb.connect  # type: ignore[attr-defined]

    def _session(self, policy: Policy, database: str, extra: Mapping[str, str], limits: bool) -> Any:
        conn = self._connect(self.path)
        try:
            conn.query(f"USE `{database.replace('`', '')}`", "TSV")
            settings = {**extra, **policy.settings(self.database)}
            if limits:
                settings.update({k: v for k, v in policy.result_limits().items() if k not in extra})
            conn.query("SET " + ", ".join(f"{name} = {quote(value)}" for name, value in settings.items()), "TSV")
            conn.query("SET readonly = 1", "TSV")  # last, alone: from here on nothing can be changed
        except Exception as exc:
            conn.close()
            raise from_engine(exc) from exc
        return conn

    def check(self, sql: str, policy: Policy, database: str, params: Mapping[str, str]) -> str | None:
        """Refuse what the sandbox does not allow; return the FORMAT the query names itself, if any."""
        gate = self._session(policy, database, {}, limits=False)
        try:
            try:
                formatted = gate.query("SELECT formatQuery({q:String})", "TSVRaw", params={"q": _escaped(sql)}).bytes().decode()
            except Exception as exc:
                raise from_engine(exc) from exc
            text, own_format = split_format(formatted.rstrip("\n"))
            try:
                statement = parse_ast(gate.query(f"EXPLAIN AST {text}", "TSVRaw", params=dict(params)).bytes().decode())
            except Exception as exc:
                raise from_engine(exc) from exc
            check_ast(statement)
            if policy.tenant is not None and statement.kind.startswith("Select"):
                try:
                    tree = gate.query(f"EXPLAIN QUERY TREE {text}", "TSVRaw", params=dict(params)).bytes().decode()
                except Exception as exc:
                    raise from_engine(exc) from exc
                check_tables(tree, self.database, policy.tenant)
            return own_format
        finally:
            gate.close()

    def run(self, sql: str, fmt: str, policy: Policy, *, database: str | None = None,
            params: Mapping[str, str] | None = None, settings: Mapping[str, str] | None = None,
            query_id: str = "") -> Result:
        """Check and run ``sql``; the result in ``fmt`` unless the query names its own FORMAT.

        Raises:
            SqlError: refused by the sandbox, or failed in the engine (ClickHouse's code and text).
        """
        database = database or self.database
        params = dict(params or {})
        own_format = self.check(sql, policy, database, params)
        conn = self._session(policy, database, dict(settings or {}), limits=True)
        started = time.perf_counter_ns()
        try:
            result = conn.query(sql, fmt, params=params)
            body = result.bytes()
            rows, size = int(result.rows_read()), int(result.bytes_read())
        except Exception as exc:
            raise from_engine(exc) from exc
        finally:
            conn.close()
        return Result(body, own_format or fmt, query_id or str(uuid.uuid4()), rows, size,
                      time.perf_counter_ns() - started)

    def scalar(self, sql: str) -> str:
        """One value of a trusted query (version, timezone), outside any caller's sandbox."""
        conn = self._connect(self.path)
        try:
            return str(conn.query(sql, "TSVRaw").bytes().decode().strip())
        finally:
            conn.close()
