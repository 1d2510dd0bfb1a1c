"""The ClickHouse sink: one insert per batch, a health check, and the one place that decides retries."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sinks.identity import token_hash
from llm_cost_tracker.storage.client import DEDUP_SETTINGS, is_embedded, sql_string
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.scratch import arrow_file, scratch_file, sweep
from llm_cost_tracker.types import AttributeColumns, ProtobufRecords, Records

log = get_logger("sink")

# ClickHouse error codes that retrying cannot fix: the batch itself is wrong for the table.
_PERMANENT_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    117,  # INCORRECT_DATA
    16,   # NO_SUCH_COLUMN_IN_TABLE
})
# A batch mixes many clients' spans: one client's spans dated across 100+ months must not fail (Code 252,
# retried forever) everyone's insert.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0}
_CODE = re.compile(r"Code:\s*(\d+)")


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code carried by ``exc``, if any."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_retriable(exc: BaseException) -> bool:
    """Whether writing the same batch again may succeed (connection trouble, overload, timeouts)."""
    if isinstance(exc, (ValueError, TypeError, OverflowError)):
        return False  # the batch could not even be encoded
    code = error_code(exc)
    return code not in _PERMANENT_CODES


# ProtobufList input -> llm_spans: the SpanRecordV1 fields read (names as in storage.rows.SPAN_COLUMNS) and the
# column each one fills. Money stays exact: an Int64 of pico-USD becomes Decimal(38, 12) by exact decimal division.
_PICO = "toDecimal128({0}, 12) / toDecimal128(1000000000000, 0)"
_PROTOBUF_INPUT = (
    ("trace_id", "String", "trace_id"), ("span_id", "String", "span_id"), ("parent_span_id", "String", "parent_span_id"),
    ("start_time_ns", "Int64", "timestamp"), ("duration_ns", "UInt64", "duration_ns"),
    ("service_name", "String", "service_name"), ("span_name", "String", "span_name"), ("status_code", "UInt8", "status_code"),
    ("resource_attributes", "Map(String, String)", "resource_attributes"),
    ("attributes", "Map(String, String)", "attributes"), ("tenant", "String", "tenant"), ("dialect", "String", "dialect"),
    ("operation", "String", "operation"), ("provider", "String", "provider"),
    ("request_model", "String", "request_model"), ("response_model", "String", "response_model"),
    ("input_tokens", "UInt64", "input_tokens"), ("output_tokens", "UInt64", "output_tokens"),
    ("cache_read_tokens", "UInt64", "cache_read_tokens"), ("cache_write_tokens", "UInt64", "cache_write_tokens"),
    ("reasoning_tokens", "UInt64", "reasoning_tokens"), ("pricing_model", "String", "pricing_model"),
    ("price_version", "String", "price_version"), ("cost_pusd", "Nullable(Int64)", "cost_usd"),
    ("pricing_status", "String", "pricing_status"), ("reported_cost_pusd", "Nullable(Int64)", "reported_cost_usd"),
    ("cache_savings_pusd", "Nullable(Int64)", "cache_savings_usd"),
)
_PROTOBUF_STRUCTURE = ", ".join(f"{name} {kind}" for name, kind, _ in _PROTOBUF_INPUT)
_PROTOBUF_COLUMNS = ", ".join(column for _, _, column in _PROTOBUF_INPUT)
_PROTOBUF_SELECT = ", ".join(
    "fromUnixTimestamp64Nano(start_time_ns, 'UTC')" if column == "timestamp" else
    _PICO.format(name) if column.endswith("_usd") else name for name, _, column in _PROTOBUF_INPUT)


# Errors meaning the store cannot run the protobuf insert at all (an older server without format_schema_source,
# a profile that forbids the settings or the input()/file() functions...), as opposed to this batch failing.
_UNSUPPORTED_CODES = frozenset({
    36,   # BAD_ARGUMENTS
    46,   # UNKNOWN_FUNCTION
    48,   # NOT_IMPLEMENTED
    62,   # SYNTAX_ERROR
    73,   # UNKNOWN_FORMAT
    107,  # FILE_DOESNT_EXIST
    115,  # UNKNOWN_SETTING
    164,  # READONLY
    291,  # DATABASE_ACCESS_DENIED
    436, 443, 444,  # PROTOBUF_BAD_CAST, NO_COLUMNS_SERIALIZED_TO_PROTOBUF_FIELDS, UNKNOWN_PROTOBUF_FORMAT
    452,  # SETTING_CONSTRAINT_VIOLATION
    497,  # ACCESS_DENIED
})


def _schema_file(schema: str) -> str:
    """An absolute path holding ``schema``, named by its content (written once; same path for the same schema,
    so ClickHouse's cache of parsed schemas holds one entry)."""
    name = f"lct-schema-{hashlib.sha256(schema.encode()).hexdigest()[:16]}.proto"
    path = os.path.join(tempfile.gettempdir(), name)
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == schema:
                return path
    except OSError:
        pass
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=os.path.dirname(path), prefix=name, delete=False) as out:
        out.write(schema)
    os.replace(out.name, path)  # atomic: a concurrent reader sees the old complete file or this one
    return path


def _settings_clause(settings: dict[str, Any]) -> str:
    """``settings`` as a statement's SETTINGS clause (chDB would otherwise SET and restore each one around the call)."""
    return ", ".join(f"{k} = {sql_string(v) if isinstance(v, str) else int(v)}" for k, v in settings.items())


def _stamped(table: pa.Table, stamp: int) -> pa.Table:
    """``table`` with the ``insert_token`` column every row of this insert carries (left to its default 0 when
    the insert has no token)."""
    if not stamp:
        return table
    return table.append_column("insert_token", pa.repeat(pa.scalar(stamp, pa.uint64()), table.num_rows))


def protobuf_route(client: Any) -> str:
    """How ``client`` can be handed protobuf for ClickHouse to parse: ``"file"`` (embedded chDB: a temporary
    file read with ``file()``), ``"input"`` (a server over HTTP: the request body read with ``input()``) or
    ``""`` (unknown client: Arrow only)."""
    if is_embedded(client):
        return "file"
    if type(client).__name__ == "HttpClient":
        return "input"
    return ""


class ClickHouseSink:
    """Writes batches of records to ``llm_spans`` through a clickhouse-connect client.

    Args:
        client: a clickhouse-connect client (chDB or HTTP); used from one thread only.
        table: target table.
    """

    def __init__(self, client: Any, table: str = "llm_spans") -> None:
        self._client = client
        self.table = table
        self.protobuf_route = protobuf_route(client)
        """How protobuf records reach ClickHouse (see :func:`protobuf_route`); ``""`` once the store refused it."""
        self._embedded = is_embedded(client)
        self._purge = self._embedded
        if self._embedded:  # the scratch files of writers killed mid-statement (storage/scratch.py)
            swept = sweep()
            if swept:
                log.info("removed scratch files left by processes that no longer run", files=swept)

    def write(self, records: Records, dedup_token: str = "", columns: Sequence[AttributeColumns] = ()) -> None:
        """Insert ``records`` in one statement; a non-empty ``dedup_token`` makes a repeat a no-op. The
        attribute ``columns`` the records were decoded with, when given, build their attribute maps
        (``storage.rows.records_to_arrow``).

        ``records`` are SpanRecords (inserted as Arrow), an Arrow table of spans (``storage.table.SpanTable``,
        inserted as it is), or wire records from the Kafka consumer, which ClickHouse parses itself (``FORMAT
        ProtobufList``) where it can; a store that refuses that statement (a server without
        ``format_schema_source``, say) gets the same rows as Arrow, with the same token, from then on.

        The repeat is a no-op in the rollups too: their materialized views deduplicate their own blocks
        (``deduplicate_blocks_in_dependent_materialized_views``), also when the first attempt stored the
        raw rows and then failed in a view.
        """
        settings = INSERT_SETTINGS | (DEDUP_SETTINGS | {"insert_deduplication_token": dedup_token} if dedup_token else {})
        stamp = token_hash(dedup_token)  # each row's insert_token (sinks/identity.py)
        if isinstance(records, list):
            self._insert_arrow(lambda: records_to_arrow(records, columns), settings, stamp)
        elif self.protobuf_route and isinstance(records, ProtobufRecords):
            self._write_protobuf(records, settings, stamp)
        else:
            self._insert_arrow(records.to_arrow, settings, stamp)
        if self._purge:
            self._purge_freed()

    def _purge_freed(self) -> None:
        """Hand the memory chDB freed back to the system after an insert (``SYSTEM JEMALLOC PURGE``).

        chDB's allocator keeps what an insert and the merges beside it freed, ~180 MiB after inserts of 40,960
        spans, and the queue fills beside it while the next batch waits: in ``benchmarks/ingest.py`` purging
        took the peak RSS at 20,000-span batches from 904-996 MiB to 868-884, under the 891-915 of 10,000-span
        batches without it, for ~10 ms a purge and page faults worth ~1 us per span on the next insert
        (docs/performance.md, "Where the memory goes"). The rows are stored by then: a store that refuses the
        statement is logged once and not asked again, and the batch stays written.
        """
        try:
            self._client.command("SYSTEM JEMALLOC PURGE")
        except Exception as exc:
            self._purge = False
            log.warning("the embedded store refused to purge its allocator; not asked again",
                        error=f"{type(exc).__name__}: {exc}"[:300])

    def _insert_arrow(self, build: Callable[[], pa.Table], settings: dict[str, Any], stamp: int) -> None:
        """Insert the Arrow table ``build`` returns, each row stamped with ``stamp``.

        Into embedded chDB, the table is written as an Arrow IPC file straight from its buffers and dropped
        before chDB reads the file (``INSERT ... FROM INFILE``, as clickhouse-connect's ``insert_arrow`` does),
        so the insert's peak holds no Python copy of the batch. ``insert_arrow`` builds the whole file in memory,
        then copies it into a ``bytes`` to write it, and its caller keeps the table alive throughout: three
        copies of the batch beside chDB's own (docs/performance.md, "Where the memory goes"). A server gets the
        table through clickhouse-connect.
        """
        if not self._embedded:
            self._client.insert_arrow(self.table, _stamped(build(), stamp), settings=settings)
            return
        table = _stamped(build(), stamp)
        into = f"INSERT INTO {self.table} ({', '.join(f'`{name}`' for name in table.schema.names)})"
        path = arrow_file(table, "batch")
        del table  # the file holds the batch now: its buffers go back before chDB's insert allocates its own
        pa.default_memory_pool().release_unused()  # and pyarrow's allocator returns them instead of keeping them
        try:
            self._client.command(f"{into} FROM INFILE {sql_string(path)} SETTINGS {_settings_clause(settings)} "
                                 "FORMAT Arrow")
        finally:
            os.unlink(path)

    def _write_protobuf(self, records: ProtobufRecords, settings: dict[str, Any], stamp: int) -> None:
        try:
            self._insert_protobuf(records, settings, stamp)
        except Exception as exc:
            # Whatever the reason, the same rows as Arrow, with the same dedup token (an insert that did land is
            # then a no-op); if that fails too, its error decides (retry or park) as for any batch.
            self._insert_arrow(records.to_arrow, settings, stamp)
            error = f"{type(exc).__name__}: {exc}"[:500]
            if error_code(exc) in _UNSUPPORTED_CODES or type(exc).__name__ in ("ProgrammingError", "NotSupportedError"):
                # this store does not take the statement (and took the same rows as Arrow): stop trying it
                log.warning("the store refused the protobuf insert; inserting Arrow from now on",
                            route=self.protobuf_route, error=error)
                self.protobuf_route = ""
            else:
                log.warning("protobuf insert failed; the batch went as Arrow", error=error)

    def _insert_protobuf(self, records: ProtobufRecords, settings: dict[str, Any], stamp: int) -> None:
        into = f"INSERT INTO {self.table} ({_PROTOBUF_COLUMNS}{', insert_token' if stamp else ''})"
        select = f"{_PROTOBUF_SELECT}, toUInt64({int(stamp)})" if stamp else _PROTOBUF_SELECT
        if self.protobuf_route == "input":  # a server over HTTP: the body is the data, settings are URL parameters
            settings = settings | {"format_schema_source": "string", "format_schema": records.protobuf_schema,
                                   "format_schema_message_name": records.protobuf_message}
            self._client.command(f"{into} SELECT {select} FROM input({sql_string(_PROTOBUF_STRUCTURE)}) "
                                 "FORMAT ProtobufList", data=records.protobuf_list(), settings=settings)
            return
        # chDB: the batch in a temporary file read with file(), the schema from a file too (a schema given as a
        # string is cached by chDB in ./__cache__ of the process), and the settings in the statement (chDB would
        # otherwise SET and restore each one around the call)
        settings = settings | {"format_schema": _schema_file(records.protobuf_schema),
                               "format_schema_message_name": records.protobuf_message}
        clause = _settings_clause(settings)
        path = scratch_file("batch", ".pb")
        try:
            with open(path, "wb") as out:
                out.write(records.protobuf_list())
            self._client.command(f"{into} SETTINGS {clause} SELECT {select} FROM file({sql_string(path)}, "
                                 f"'ProtobufList', {sql_string(_PROTOBUF_STRUCTURE)})")
        finally:
            os.unlink(path)

    def healthcheck(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            self._client.query("SELECT 1")
        except Exception:
            return False
        return True
