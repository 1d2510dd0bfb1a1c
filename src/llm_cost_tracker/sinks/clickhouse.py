"""The ClickHouse sink: one insert per batch, a health check, and the one place that decides retries."""

from __future__ import annotations

import re
from typing import Any

from llm_cost_tracker.storage.rows import SpanColumns, records_to_arrow
from llm_cost_tracker.types import SpanRecord

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
# Per-insert settings that make a token-carrying insert idempotent in llm_spans and its rollups.
DEDUP_SETTINGS = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}
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


class ClickHouseSink:
    """Writes batches of records to ``llm_spans`` through a clickhouse-connect client.

    Args:
        client: a clickhouse-connect client (chDB or HTTP); used from one thread only.
        table: target table.
    """

    def __init__(self, client: Any, table: str = "llm_spans") -> None:
        self._client = client
        self.table = table

    def write(self, records: list[SpanRecord] | SpanColumns, dedup_token: str = "") -> None:
        """Insert ``records`` (SpanRecords, or SpanColumns from the Kafka consumer) in one statement; a non-empty ``dedup_token`` makes a repeat a no-op.

        The repeat is a no-op in the rollups too: their materialized views deduplicate their own blocks
        (``deduplicate_blocks_in_dependent_materialized_views``), also when the first attempt stored the
        raw rows and then failed in a view.
        """
        settings = INSERT_SETTINGS | (DEDUP_SETTINGS | {"insert_deduplication_token": dedup_token} if dedup_token else {})
        table = records.to_arrow() if isinstance(records, SpanColumns) else records_to_arrow(records)
        self._client.insert_arrow(self.table, table, settings=settings)

    def healthcheck(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            self._client.query("SELECT 1")
        except Exception:
            return False
        return True
