"""Span records as one Arrow table shaped like ``llm_spans``: what the columnar receive path hands the queue.

Why: a request the columnar path (``sources/columnar.py``) decides reaches the writer without a Python object
per span. The in-process queue holds its table, a batch of such requests is their tables concatenated, and
the writer asks of it what it asks of the Kafka consumer's wire records (:class:`~llm_cost_tracker.types.
WireRecords`): identities, spend rows, a subset, the Arrow table to insert, and SpanRecords only to park.

Costs are exact here too: the Decimal128 columns hold the integer pico-USD as their unscaled values
(``storage.rows.pico_to_decimal_array``), and :func:`pico_values` reads them back without a Decimal object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, PARTIAL
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.types import PRICED, AttributeColumns, Key, SpanRecord, SpendRow, TokenUsage

__all__ = ["SpanTable", "pico_values"]

_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def pico_values(column: pa.Array | pa.ChunkedArray) -> list[int | None]:
    """The integer pico-USD of a cost column (Decimal128(38, 12), exact: its unscaled values), None for nulls.

    The stored costs fit an int64 (``types.SpanRecord.cost_pusd``), so each value's low 64-bit word is the
    whole value."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if not n:
        return []
    words = np.frombuffer(array.buffers()[1], dtype=np.int64, count=2 * (array.offset + n))[2 * array.offset::2]
    values: list[int | None] = words.tolist()
    if array.null_count:
        for i in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist():
            values[i] = None
    return values


class SpanTable:
    """Span records held as an Arrow table of the ``llm_spans`` columns (``storage.rows.records_to_arrow``'s).

    A :class:`~llm_cost_tracker.types.WireRecords`: the writer reads identities and spend rows from its
    columns, inserts :meth:`to_arrow` as it is, and builds SpanRecords (:meth:`to_records`) only to park it.
    """

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    @classmethod
    def concat(cls, parts: Sequence[SpanTable | tuple[list[SpanRecord], AttributeColumns | None]]) -> SpanTable:
        """One table of ``parts`` in order: tables as they are, lists of records (with the attribute columns they
        were decoded with, when any) built into theirs."""
        tables = [p.table if isinstance(p, SpanTable) else records_to_arrow(p[0], () if p[1] is None else [p[1]])
                  for p in parts]
        return cls(tables[0] if len(tables) == 1 else pa.concat_tables(tables))

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanTable):
            return bool(self.table.equals(other.table))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def slice(self, start: int, length: int | None = None) -> SpanTable:
        """Rows ``start`` to ``start + length`` (zero-copy)."""
        return SpanTable(self.table.slice(start, length))

    def _column(self, name: str) -> list[object]:
        return self.table.column(name).to_pylist()  # type: ignore[no-any-return]

    def _starts(self) -> list[int]:
        return self.table.column("timestamp").cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]

    def identity_keys(self) -> list[Key]:
        """(tenant, trace_id, span_id, start_time_ns) of each row, in order."""
        return list(zip(self._column("tenant"), self._column("trace_id"), self._column("span_id"),  # type: ignore[arg-type]
                        self._starts(), strict=True))

    def spend_rows(self) -> list[SpendRow]:
        """What the spend metrics count of each row (``sinks.identity.SpendRow``), in order."""
        t = self.table
        statuses = self._column("pricing_status")
        costs = pico_values(t.column("cost_usd"))
        reported = pico_values(t.column("reported_cost_usd"))
        models = [r or q for r, q in zip(self._column("response_model"), self._column("request_model"), strict=True)]
        missing: list[str] = [""] * len(statuses)
        if PARTIAL in statuses:  # (rare: a partial price names the missing dimension in the span's attributes)
            maps = t.column("attributes")
            for i, status in enumerate(statuses):
                if status == PARTIAL:
                    missing[i] = dict(maps[i].as_py()).get(MISSING_ATTRIBUTE, "")
        return list(zip(self._column("tenant"), self._column("service_name"), self._column("provider"), models,
                        *(self._column(name) for name in _TOKENS), costs, statuses, missing,
                        [r if s == PRICED else None for r, s in zip(reported, statuses, strict=True)],
                        strict=True))

    def subset(self, keep: Sequence[int]) -> SpanTable:
        """The rows at positions ``keep``, in that order."""
        return SpanTable(self.table.take(pa.array(keep, type=pa.int64())))

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_records(self) -> list[SpanRecord]:
        """The rows as SpanRecords, field for field (what parking writes and a replay stores back)."""
        t = self.table
        c = {name: self._column(name) for name in t.column_names if name not in (
            "timestamp", "cost_usd", "reported_cost_usd", "cache_savings_usd", "attributes", "resource_attributes")}
        starts = self._starts()
        costs = pico_values(t.column("cost_usd"))
        reported = pico_values(t.column("reported_cost_usd"))
        savings = pico_values(t.column("cache_savings_usd"))
        attributes = [dict(pairs) for pairs in self._column("attributes")]  # type: ignore[call-overload]
        resources = [dict(pairs) for pairs in self._column("resource_attributes")]  # type: ignore[call-overload]
        out = []
        for i in range(t.num_rows):
            out.append(SpanRecord(
                trace_id=c["trace_id"][i], span_id=c["span_id"][i], parent_span_id=c["parent_span_id"][i],  # type: ignore[arg-type]
                start_time_ns=starts[i], duration_ns=c["duration_ns"][i], service_name=c["service_name"][i],  # type: ignore[arg-type]
                span_name=c["span_name"][i], status_code=c["status_code"][i],  # type: ignore[arg-type]
                resource_attributes=resources[i], attributes=attributes[i], tenant=c["tenant"][i],  # type: ignore[arg-type]
                dialect=c["dialect"][i], operation=c["operation"][i], provider=c["provider"][i],  # type: ignore[arg-type]
                request_model=c["request_model"][i], response_model=c["response_model"][i],  # type: ignore[arg-type]
                usage=TokenUsage(*(c[name][i] for name in _TOKENS)),  # type: ignore[arg-type]
                pricing_model=c["pricing_model"][i], price_version=c["price_version"][i],  # type: ignore[arg-type]
                cost_pusd=costs[i], pricing_status=c["pricing_status"][i],  # type: ignore[arg-type]
                reported_cost_pusd=reported[i], cache_savings_pusd=savings[i]))
        return out
