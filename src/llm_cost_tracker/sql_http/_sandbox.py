"""What a caller may run through the SQL endpoint, decided by the engine's own parser and settings.

Three layers, none of which rewrites the caller's SQL:

1. **Settings** set on the query's own engine session before ``readonly = 1``: the tenant's row filter
   (``additional_table_filters``, applied by the engine to every read of a tenant table, through
   subqueries, CTEs and ``view()``), execution time, result rows/bytes, memory and threads. Once
   ``readonly = 1`` is set the caller can change none of them (``SETTINGS`` and ``SET`` are refused by
   the engine), and writes, DDL, ``SYSTEM``, ``OPTIMIZE`` and the file/url/remote/executable table
   functions are refused by the engine too.
2. **The statement's shape**, read from the engine's parse (``formatQuery`` refuses multi-statements;
   ``EXPLAIN AST`` gives the statement kind and every function and table named): only SELECT, SHOW
   TABLES/DATABASES, DESCRIBE, EXISTS and SHOW CREATE; no ``INTO OUTFILE``; no function that reads files
   or other tables behind the filters (``file``, ``merge``, ``s3``, ``joinGet``, ``dictGet`` ...).
3. **Tables a tenant may read**, from the analyzer's resolved query tree (``EXPLAIN QUERY TREE``, so CTE
   and alias names are resolved): the tenant tables of the store and a few harmless system tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from llm_cost_tracker.sql_http._errors import SqlError
from llm_cost_tracker.storage.client import sql_string

__all__ = ["TENANT_TABLES", "Policy", "Statement", "check_ast", "check_tables", "client_settings",
           "quote", "split_format"]

TENANT_TABLES = ("llm_spans", "llm_spend_hourly", "llm_spend_daily", "reprice_audit", "schedules", "schedule_jobs")
"""Tables with a ``tenant`` column: a tenant reads its own rows of each, filtered by the engine."""
SYSTEM_FOR_TENANTS = frozenset({"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "functions",
                                "table_functions", "data_type_families", "formats", "time_zones", "databases",
                                "tables", "columns", "build_options", "contributors", "collations"})
"""System tables a tenant may read: none holds rows or queries of other tenants (tables/columns/databases
are filtered to what the tenant can read)."""
STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "DescribeQuery",
              "ExistsTableQuery", "ExistsDatabaseQuery", "ShowCreateTableQuery")
TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries",
                             "values", "view", "null", "generaterandom", "format"})
"""Table functions that read nothing but their arguments (or a query that is itself checked)."""
FUNCTIONS_REFUSED = frozenset({"file", "catboostevaluate", "modelevaluate", "joinget", "joingetornull",
                               "getclienthttpheader", "sleep", "sleepeachrow"})
"""Scalar functions that read files, read tables around the row filters, or hold a query slot idle."""
CLIENT_SETTINGS = re.compile(
    r"^(output_format_\w+|date_time_output_format|date_time_input_format|format_\w+|session_timezone|"
    r"join_use_nulls|cast_string_to_dynamic_use_inference|extremes|totals_mode|prefer_column_name_to_alias|"
    r"use_client_time_zone|max_block_size|input_format_\w+|result_overflow_mode|max_execution_time|max_result_rows|"
    r"max_result_bytes|timeout_overflow_mode|max_rows_to_read|max_bytes_to_read|readonly)$")
"""Settings a client may send (applied before ``readonly``); limits only below ours, ``readonly`` only 1/2.
Not ``use_query_cache`` (a cache shared by every session), nor experimental switches (the gate checks a
query with the engine's defaults)."""
TRANSPORT = frozenset({"query", "database", "default_format", "user", "password", "query_id", "session_id",
                       "session_timeout", "session_check", "compress", "decompress", "enable_http_compression",
                       "http_zlib_compression_level", "send_progress_in_http_headers", "wait_end_of_query",
                       "http_headers_progress_interval_ms", "buffer_size", "client_protocol_version",
                       "quota_key", "role", "cancel_http_readonly_queries_on_client_close", "add_http_cors_header",
                       "http_response_buffer_size", "log_comment", "insert_deduplicate", "async_insert",
                       "wait_for_async_insert", "http_native_compression_disable_checksumming_on_decompress"})
"""URL parameters that steer the HTTP exchange, not the query (honoured or harmlessly ignored)."""
LIMITS = ("max_execution_time", "max_result_rows", "max_result_bytes")


@dataclass(frozen=True, slots=True)
class Policy:
    """The engine settings one caller's queries run under."""

    tenant: str | None
    """None for an admin (or anyone, when no tokens are configured)."""
    max_execution_seconds: float
    max_result_rows: int
    max_result_bytes: int
    max_memory_bytes: int
    max_threads: int

    def settings(self, database: str) -> dict[str, str]:
        """The sandbox settings, in order; ``readonly`` last (after it nothing can be changed)."""
        out = {"max_execution_time": _num(self.max_execution_seconds), "max_memory_usage": str(self.max_memory_bytes),
               "max_threads": str(self.max_threads), "allow_introspection_functions": "0", "allow_ddl": "0"}
        if self.tenant is not None:
            out["additional_table_filters"] = self.filters(database)
        return out

    def result_limits(self) -> dict[str, str]:
        return {"max_result_rows": str(self.max_result_rows), "max_result_bytes": str(self.max_result_bytes),
                "result_overflow_mode": "throw"}

    def filters(self, database: str) -> str:
        """``additional_table_filters``: each tenant table by its name and qualified name, and the catalogs."""
        assert self.tenant is not None
        own = f"tenant = {quote(self.tenant)}"
        entries = {}
        for table in TENANT_TABLES:
            entries[table] = own
            entries[f"{database}.{table}"] = own
        names = ", ".join(quote(t) for t in TENANT_TABLES)
        visible = f"(database = {quote(database)} AND name IN ({names})) OR database = 'system'"
        entries["system.tables"] = visible.replace("name IN", "name IN")
        entries["system.columns"] = f"(database = {quote(database)} AND table IN ({names})) OR database = 'system'"
        entries["system.databases"] = f"name IN ({quote(database)}, 'system')"
        return "{" + ", ".join(f"{quote(k)}: {quote(v)}" for k, v in entries.items()) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


quote = sql_string
"""A ClickHouse string literal (``storage.client.sql_string``)."""


def client_settings(params: Mapping[str, str], policy: Policy) -> dict[str, str]:
    """The settings a request carries that are to be applied; raises :class:`SqlError` for any other.

    Limits may only be lowered; ``readonly`` may only be asked as 1 or 2 (the endpoint is read-only).
    """
    out: dict[str, str] = {}
    ours = {"max_execution_time": policy.max_execution_seconds, "max_result_rows": policy.max_result_rows,
            "max_result_bytes": policy.max_result_bytes}
    for name, value in params.items():
        if name in TRANSPORT or name.startswith("param_"):
            continue
        if not CLIENT_SETTINGS.match(name):
            raise SqlError(164, "READONLY", f"Cannot modify '{name}' setting in readonly mode")
        if name == "readonly":
            if value.strip() not in ("1", "2"):
                raise SqlError(164, "READONLY", "Cannot modify 'readonly' setting in readonly mode")
            continue
        if name in ours:
            try:
                number = float(value)
            except ValueError:
                raise SqlError(72, "CANNOT_PARSE_NUMBER", f"setting {name}: not a number: {value!r}") from None
            if number <= 0 or number > ours[name]:
                raise SqlError(164, "READONLY", f"Setting {name} should not be greater than {_num(ours[name])} "
                                                "(0 is unlimited) on this endpoint")
        out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Statement:
    """What the engine's parse says about one query."""

    kind: str
    tables: tuple[str, ...]
    functions: tuple[str, ...]
    table_functions: tuple[str, ...]
    into_outfile: bool


_LINE = re.compile(r"^( *)(\S+)(?: (\S+))?")


def parse_ast(explain: str) -> Statement:
    """Read ``EXPLAIN AST`` text: the root kind, tables, functions and table functions named anywhere."""
    lines = [line for line in explain.splitlines() if line.strip()]
    if not lines:
        raise SqlError(62, "SYNTAX_ERROR", "Empty query")
    kind = lines[0].split()[0]
    tables: list[str] = []
    functions: list[str] = []
    table_functions: list[str] = []
    into_outfile = False
    under_table_expression: int | None = None
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if not match:
            continue
        depth, node, arg = len(match.group(1)), match.group(2), match.group(3) or ""
        if node == "TableExpression":
            under_table_expression = depth
            continue
        direct_child = under_table_expression is not None and depth == under_table_expression + 1
        if depth <= (under_table_expression or -1):
            under_table_expression = None
        if node == "TableIdentifier":
            tables.append(arg)
        elif node == "Function":
            (table_functions if direct_child else functions).append(arg.lower())
        elif node == "Literal" and depth == 1 and kind == "SelectWithUnionQuery" and index > 0:
            into_outfile = True  # the only Literal directly under the root is INTO OUTFILE's file name
    return Statement(kind, tuple(tables), tuple(functions), tuple(table_functions), into_outfile)


def check_ast(statement: Statement) -> None:
    """Refuse statements other than reads, ``INTO OUTFILE``, and functions that reach outside the sandbox."""
    if statement.kind not in STATEMENTS:
        raise SqlError(164, "READONLY", f"{statement.kind.removesuffix('Query')} is not allowed: this endpoint "
                                        "is read-only (SELECT, SHOW TABLES, DESCRIBE, EXISTS)")
    if statement.into_outfile:
        raise SqlError(164, "READONLY", "INTO OUTFILE is not allowed: results are returned over HTTP only")
    for name in statement.table_functions:
        if name not in TABLE_FUNCTIONS:
            raise SqlError(497, "ACCESS_DENIED", f"table function {name}() is not allowed on this endpoint "
                                                 f"(allowed: {', '.join(sorted(TABLE_FUNCTIONS))})")
    for name in statement.functions:
        if name in FUNCTIONS_REFUSED or name.startswith("dict"):
            raise SqlError(497, "ACCESS_DENIED", f"function {name}() is not allowed on this endpoint")


_TABLE = re.compile(r"\btable_name: (\S+?)(?:,|$)", re.M)


def check_tables(query_tree: str, database: str, tenant: str) -> None:
    """Refuse a tenant's query that reads a table outside its own tables and the harmless system ones."""
    for name in _TABLE.findall(query_tree):
        db, _, table = name.rpartition(".")
        if (db == database and table in TENANT_TABLES) or (db == "system" and table in SYSTEM_FOR_TENANTS):
            continue
        raise SqlError(497, "ACCESS_DENIED", f"tenant {tenant}: not enough privileges to read {name} "
                                             f"(readable: {', '.join(TENANT_TABLES)} and system catalogs)")


_FORMAT_LINE = re.compile(r"\nFORMAT (\w+)\s*$")


def split_format(formatted: str) -> tuple[str, str | None]:
    """``formatQuery`` output without its trailing ``FORMAT`` line, and that format's name (if any)."""
    match = _FORMAT_LINE.search(formatted)
    if not match:
        return formatted, None
    return formatted[: match.start()], match.group(1)
