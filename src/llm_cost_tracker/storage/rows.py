"""SpanRecords -> an Arrow table shaped like ``llm_spans``, built column by column.

Arrow is the insert format because it is exact (Decimal128 built from integer pico-USD, no float
or Decimal object per row) and fast on both chDB and a ClickHouse server.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from operator import attrgetter

import numpy as np
import pyarrow as pa

from llm_cost_tracker.types import AttributeColumns, SpanRecord

COST_TYPE = pa.decimal128(38, 12)
_MAP_TYPE = pa.map_(pa.string(), pa.string())

STRING_COLUMNS = ("tenant", "trace_id", "span_id", "parent_span_id", "service_name", "span_name", "operation",
                  "provider", "request_model", "response_model", "pricing_model", "price_version", "dialect",
                  "pricing_status")


def pico_to_decimal_array(values: list[int | None] | pa.Array) -> pa.Array:
    """Exact Decimal128(38, 12) array from integer pico-USD (None -> null; or an int64 Arrow array with its
    nulls), without Decimal objects: the integers are the decimals' unscaled values, so Arrow's int64 array
    (its nulls included) gives the low words and their sign the high ones."""
    ints = values if isinstance(values, pa.Array) else pa.array(values, type=pa.int64())
    n = len(ints)
    low = np.frombuffer(ints.buffers()[1], dtype=np.int64, count=n) if n else np.zeros(0, np.int64)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = np.where(low < 0, -1, 0)
    return pa.Array.from_buffers(COST_TYPE, n, [ints.buffers()[0], pa.py_buffer(words)], null_count=ints.null_count)


def map_array(dicts: list[dict[str, str]]) -> pa.Array:
    """The Map column of ``dicts``, in their order: Arrow walks the dicts itself (2-2.5x faster than
    flattening them into key and value lists in Python first)."""
    return pa.array(dicts, type=_MAP_TYPE)


def _shared_map_array(dicts: list[dict[str, str]]) -> pa.Array:
    """The Map column of dicts that are mostly the same few objects: the spans of one resource share its
    dict (the decoders make one per resource, redaction keeps it shared), so each distinct dict is
    converted once and the column is taken from those rows in C (0.35 against 0.83 us per span with
    4-entry resources, and the gap grows with the resource: Kubernetes resources carry 10-30 entries).
    Mostly distinct dicts are converted as they are."""
    first: dict[int, int] = {}
    positions = [first.setdefault(id(d), len(first)) for d in dicts]  # ids are stable: ``dicts`` holds them all
    if len(first) * 4 > len(dicts):
        return map_array(dicts)
    distinct = list({id(d): d for d in dicts}.values())  # first-seen order, as ``positions`` numbers them
    return map_array(distinct).take(pa.array(positions, type=pa.int32()))


def entry_positions(firsts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For runs that start at ``firsts`` and hold ``lengths`` entries, the position of every entry, run by run."""
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(firsts, lengths) + within  # type: ignore[no-any-return]


def described_rows(dicts: Sequence[dict[str, str]], columns: Sequence[AttributeColumns],
                   counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``columns`` describes each of ``dicts`` (``group``, -1 for none) and its row there (``row``).

    A dict is described when it is a row's own dict (its identity), with the keys it was decoded with
    (none added by a stage since; a dict redaction changed is another dict) and no key repeated on the
    wire: then its entries are the row's slots, in order. The one rule for every consumer of the columns
    (the Arrow maps here, the Kafka records' maps in ``queue/kafka_attributes``). ``counts``: the dicts'
    lengths, when the caller has them.
    """
    n = len(dicts)
    where: dict[int, int] = {}  # id(dict) -> its row, numbered across all the columns
    first_rows = [0]
    for c in columns:
        where.update(zip(map(id, c.dicts), range(first_rows[-1], first_rows[-1] + len(c.dicts)), strict=True))
        first_rows.append(first_rows[-1] + len(c.dicts))
    if not first_rows[-1]:
        return np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    if counts is None:
        counts = np.fromiter(map(len, dicts), np.int64, n)
    sizes = np.fromiter(itertools.chain.from_iterable(c.sizes for c in columns), np.int64, first_rows[-1])
    whole = np.concatenate([c.ends - c.begins for c in columns]) == sizes  # no key repeated on the wire
    # a dict's id is a row's only while that dict is alive, and the columns hold every row's dict they name (a
    # queue's keep those its records hold, AttributeColumns.held_by; a row they let go of is None, whose id no
    # dict has): an id found is that very dict
    found = np.fromiter(map(where.get, map(id, dicts), itertools.repeat(-1)), np.int64, n)
    described = (found >= 0) & (sizes[found] == counts) & whole[found]
    group = np.where(described, np.searchsorted(first_rows, found, side="right") - 1, -1)
    return group, found - np.asarray(first_rows)[np.maximum(group, 0)]


def _columns_map_array(dicts: list[dict[str, str]], columns: Sequence[AttributeColumns]) -> pa.Array:
    """The Map column of ``dicts``, built from the wire scan's ``columns`` where they describe a dict
    (:func:`described_rows`).

    A described dict's entries come from the request's key and value pools by index (``take``, in C), and
    only the other dicts are walked; one pool array per request (~0.6 against ~2 us per span for the
    benchmark's 15 attributes, built from dicts).
    """
    if not any(c.dicts for c in columns):
        return map_array(dicts)
    n = len(dicts)
    counts = np.fromiter(map(len, dicts), np.int64, n)
    group, row = described_rows(dicts, columns, counts)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    key_index = np.empty(int(offsets[-1]), np.int64)
    value_index = np.empty(int(offsets[-1]), np.int64)
    key_pools: list[pa.Array] = []
    value_pools: list[pa.Array] = []
    key_base = value_base = 0
    for k, c in enumerate(columns):
        mine = np.flatnonzero(group == k)
        if len(mine):
            slots = entry_positions(c.begins[row[mine]], counts[mine])
            to = entry_positions(offsets[mine], counts[mine])
            key_index[to] = c.key_ids[slots] + key_base
            value_index[to] = c.value_ids[slots] + value_base
            key_pools.append(pa.array(c.keys, type=pa.string()))
            value_pools.append(pa.array(c.values, type=pa.string()))
            key_base += len(c.keys)
            value_base += len(c.values)
    others = np.flatnonzero(group < 0).tolist()
    if others:
        keys = list(itertools.chain.from_iterable(dicts[i] for i in others))
        values = list(itertools.chain.from_iterable(dicts[i].values() for i in others))
        to = entry_positions(offsets[others], counts[others])
        key_index[to] = np.arange(len(keys)) + key_base
        value_index[to] = np.arange(len(values)) + value_base
        key_pools.append(pa.array(keys, type=pa.string()))
        value_pools.append(pa.array(values, type=pa.string()))
    keys_array = pa.concat_arrays(key_pools).take(pa.array(key_index)) if key_pools else pa.array([], pa.string())
    values_array = (pa.concat_arrays(value_pools).take(pa.array(value_index)) if value_pools
                    else pa.array([], pa.string()))
    return pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)), keys_array, values_array, type=_MAP_TYPE)


def records_to_arrow(records: list[SpanRecord], columns: Sequence[AttributeColumns] = ()) -> pa.Table:
    """The ``llm_spans`` columns of ``records``; their attribute maps from the attribute ``columns`` they were
    decoded with, where those still describe them (the same table either way)."""
    def column(name: str, of: list[object] | list[SpanRecord] = records) -> list[object]:
        return list(map(attrgetter(name), of))  # a C loop: a third of a list comprehension's cost

    table: dict[str, pa.Array] = {
        "timestamp": pa.array(column("start_time_ns"), type=pa.int64()).cast(pa.timestamp("ns", "UTC")),
    }
    for name in STRING_COLUMNS:
        table[name] = pa.array(column(name), type=pa.string())
    usages = column("usage")
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        table[name] = pa.array(column(name, usages), type=pa.uint64())
    table["cost_usd"] = pico_to_decimal_array(column("cost_pusd"))
    table["reported_cost_usd"] = pico_to_decimal_array(column("reported_cost_pusd"))
    table["cache_savings_usd"] = pico_to_decimal_array(column("cache_savings_pusd"))
    table["duration_ns"] = pa.array(column("duration_ns"), type=pa.uint64())
    table["status_code"] = pa.array(column("status_code"), type=pa.uint8())
    table["resource_attributes"] = _shared_map_array(column("resource_attributes"))  # type: ignore[arg-type]
    table["attributes"] = (_columns_map_array(column("attributes"), columns)  # type: ignore[arg-type]
                           if columns else map_array(column("attributes")))  # type: ignore[arg-type]
    return pa.table(table)


SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "start_time_ns", "duration_ns", "service_name", "span_name",
                "status_code", "resource_attributes", "attributes", "tenant", "dialect", "operation", "provider",
                "request_model", "response_model", "input_tokens", "output_tokens", "cache_read_tokens",
                "cache_write_tokens", "reasoning_tokens", "pricing_model", "price_version", "cost_pusd",
                "pricing_status", "reported_cost_pusd", "cache_savings_pusd")
"""SpanRecord's fields with ``usage`` flattened into its token counts: the columns of :class:`SpanColumns`."""


class SpanColumns:
    """Span records held column-wise (one list per :data:`SPAN_COLUMNS` name), for queues that decode
    straight into columns (the Kafka consumer) instead of building a SpanRecord per span.

    Sinks that know it (``ClickHouseSink``) build the Arrow table from the columns; ``len()`` is the
    record count and :meth:`to_records` gives SpanRecords where a list of them is needed (parking).
    """

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, list[object]]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns["trace_id"])

    def __iter__(self) -> Iterator[SpanRecord]:
        return iter(self.to_records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanColumns):
            return self.columns == other.columns
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_arrow(self) -> pa.Table:
        """The ``llm_spans`` table, equal to ``records_to_arrow(self.to_records())``."""
        return columns_to_arrow(self.columns)

    def to_records(self) -> list[SpanRecord]:
        from llm_cost_tracker.types import TokenUsage

        c = self.columns
        usage = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
        plain = [name for name in SPAN_COLUMNS if name not in usage]
        out = []
        for i in range(len(self)):
            out.append(SpanRecord(**{name: c[name][i] for name in plain},  # type: ignore[arg-type]
                                  usage=TokenUsage(*(c[name][i] for name in usage))))  # type: ignore[arg-type]
        return out


def columns_to_arrow(c: dict[str, list[object]]) -> pa.Table:
    """The ``llm_spans`` columns from lists per :data:`SPAN_COLUMNS` name (same table as records_to_arrow)."""
    columns: dict[str, pa.Array] = {
        "timestamp": pa.array(c["start_time_ns"], type=pa.int64()).cast(pa.timestamp("ns", "UTC")),
    }
    for name in STRING_COLUMNS:
        columns[name] = pa.array(c[name], type=pa.string())
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        columns[name] = pa.array(c[name], type=pa.uint64())
    columns["cost_usd"] = pico_to_decimal_array(c["cost_pusd"])
    columns["reported_cost_usd"] = pico_to_decimal_array(c["reported_cost_pusd"])
    columns["cache_savings_usd"] = pico_to_decimal_array(c["cache_savings_pusd"])
    columns["duration_ns"] = pa.array(c["duration_ns"], type=pa.uint64())
    columns["status_code"] = pa.array(c["status_code"], type=pa.uint8())
    columns["resource_attributes"] = _shared_map_array(c["resource_attributes"])  # type: ignore[arg-type]
    columns["attributes"] = map_array(c["attributes"])  # type: ignore[arg-type]
    return pa.table(columns)
