"""Span records as one Arrow table shaped like ``llm_spans``: what the columnar receive path hands the queue.

Why: a request the columnar path (``sources/columnar.py``) decides reaches the writer without a Python object
per span. The in-process queue holds its table, a batch of such requests is their tables concatenated, and
the writer asks of it what it asks of the Kafka consumer's wire records (:class:`~llm_cost_tracker.types.
WireRecords`): identities, spend rows, a subset, the Arrow table to insert, and SpanRecords only to park.

Costs are exact here too: the Decimal128 columns hold the integer pico-USD as their unscaled values
(``storage.rows.pico_to_decimal_array``), and :func:`pico_values` reads them back without a Decimal object.

The columnar path's tables hold their ``LowCardinality(String)`` columns (and the attribute maps' keys)
dictionary-encoded (:data:`DICTIONARY`): each request's few distinct names once, and per row an index. Why:
building a plain column takes every row's string (a ``take`` per column, ~20 us a request each), and chDB
hashes every row's string again to build its ``LowCardinality`` column; from a dictionary it reads the
distinct strings and the indexes (its parse of those 11 columns ~0.36 against ~0.72-0.99 us per span). A
table of records (``records_to_arrow``) holds plain strings; :meth:`SpanTable.concat` casts such a table to the
dictionary form when a batch mixes the two, and :meth:`SpanTable.to_arrow` gives every column of a batch one
dictionary (an Arrow IPC file, the insert format, takes one per column).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llm_cost_tracker.compiled import compiled_or_python
from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, PARTIAL
from llm_cost_tracker.storage.rows import STRING_COLUMNS, records_to_arrow
from llm_cost_tracker.types import DUPLICATE, PRICED, AttributeColumns, Key, SpanRecord, SpendRow, TokenUsage

__all__ = ["DICTIONARY", "DICTIONARY_COLUMNS", "SpanTable", "SpendGroup", "coded_column", "dictionary_column",
           "dictionary_schema", "distinct_codes", "group_rows", "pico_values", "warm_up"]

DICTIONARY = pa.dictionary(pa.int32(), pa.string())
"""The Arrow type of a dictionary-encoded string column (a ``LowCardinality(String)`` of ``llm_spans``)."""
DICTIONARY_COLUMNS = tuple(name for name in STRING_COLUMNS if not name.endswith("_id"))
"""The string columns the columnar path dictionary-encodes (all but the ids: the store's ``LowCardinality``)."""

SpendGroup = tuple[tuple[str, str, str, str, str, bool], list[int]]
"""((tenant, service, provider, model, pricing_status, cost is None), [five token sums, then the spans (cost
None) or the cost]): what ``metrics.SpendCollector.observe_groups`` adds."""

_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def pico_values(column: pa.Array | pa.ChunkedArray) -> list[int | None]:
    """The integer pico-USD of a cost column (Decimal128(38, 12), exact: its unscaled values), None for nulls."""
    words, valid = _words(column)
    values: list[int | None] = words.tolist()
    if not valid.all():
        for i in np.flatnonzero(~valid).tolist():
            values[i] = None
    return values


def _words(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A cost column's integer pico-USD as int64 (0 where null) and where it is not null. The stored costs fit an
    int64 (``types.SpanRecord.cost_pusd``), so each value's low 64-bit word is the whole value."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    words = np.frombuffer(array.buffers()[1], dtype=np.int64, count=2 * (array.offset + n))[2 * array.offset::2]
    valid = ~array.is_null().to_numpy(zero_copy_only=False) if array.null_count else np.ones(n, bool)
    return np.where(valid, words, 0), valid


def distinct_codes(pool: list[str], ix: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``pool[ix]`` as indexes into its distinct strings, and those (a pool may hold a string twice)."""
    if len(set(pool)) == len(pool):
        return ix, pool
    index: dict[str, int] = {}
    remap = np.fromiter((index.setdefault(v, len(index)) for v in pool), np.int64, len(pool))
    return remap[ix], list(index)


def dictionary_column(pool: list[str], ix: np.ndarray) -> pa.DictionaryArray:
    """``pool[ix]`` as a :data:`DICTIONARY` column, each distinct string of ``pool`` once in its dictionary (no
    string per row is made)."""
    return coded_column(*distinct_codes(pool, ix))


def coded_column(codes: np.ndarray, distinct: list[str]) -> pa.DictionaryArray:
    """The :data:`DICTIONARY` column of rows ``codes`` into ``distinct`` (strings each once)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(distinct, pa.string()))


def _codes(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's index into the column's distinct strings, and those strings."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column  # (unifies dictionaries)
    if pa.types.is_dictionary(array.type) and len(pc.unique(array.dictionary)) != len(array.dictionary):
        array = array.dictionary_decode()  # (a string twice in the dictionary: its rows must share one code)
    encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def dictionary_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` (an ``llm_spans`` table's) in the columnar path's form: :data:`DICTIONARY_COLUMNS` and the maps'
    keys dictionary-encoded."""
    return pa.schema([pa.field(f.name, DICTIONARY if f.name in DICTIONARY_COLUMNS else pa.map_(DICTIONARY, pa.string())
                               if pa.types.is_map(f.type) else f.type) for f in schema])


def _aligned(tables: list[pa.Table]) -> list[pa.Table]:
    """``tables`` with one schema: in a batch of the columnar path's tables and of records, the records' tables
    cast to the dictionary form."""
    if not any(_has_dictionaries(t.schema) for t in tables):
        return tables
    target = dictionary_schema(tables[0].schema)
    return [t if t.schema.equals(target) else t.cast(target) for t in tables]


def _has_dictionaries(schema: pa.Schema) -> bool:
    return any(pa.types.is_dictionary(f.type) or (pa.types.is_map(f.type) and pa.types.is_dictionary(f.type.key_type))
               for f in schema)


@compiled_or_python
def _first_seen(key: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group by its ``key`` (below ``space``), numbered by first appearance, and each group's first row:
    one pass with a table of ``space`` entries (``np.unique`` sorts: ~80 against ~5 us for a request's rows)."""
    seen = np.full(space, -1, np.int64)
    group = np.empty(len(key), np.int64)
    first = np.empty(len(key), np.int64)
    count = 0
    for row in range(len(key)):
        g = seen[key[row]]
        if g < 0:
            g = count
            seen[key[row]] = g
            first[count] = row
            count += 1
        group[row] = g
    return group, first[:count]


def warm_up() -> str:
    """Load (or compile) :func:`group_rows`'s compiled loop now, not on a request; returns why it runs as Python
    instead ("" when it is compiled), for the caller to log."""
    group_rows([np.zeros(1, np.int64)], [1])
    return _first_seen.error


def group_rows(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by their codes (``codes[j]`` below ``sizes[j]``): each row's group, numbered by first
    appearance, and each group's first row."""
    n = len(codes[0])
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    space = float(np.prod([max(size, 1) for size in sizes], dtype=np.float64))
    if space < 2.0**62:
        key = np.zeros(n, np.int64)
        for column, size in zip(codes, sizes, strict=True):
            key = key * max(size, 1) + column
        if space <= 4 * n + 4096:  # (a table no bigger than a few times the rows)
            return _first_seen(key, int(space))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:  # (very many distinct values: rows compared whole)
        _, first, inverse = np.unique(np.stack(codes, 1), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def _sums(values: np.ndarray, groups: np.ndarray, count: int) -> list[int] | None:
    """Exact per-group sums of non-negative-or-not int64 ``values`` (None when an int64 sum could overflow)."""
    if len(values) and float(np.abs(values).max()) * len(values) >= 2.0**63:
        return None
    out = np.zeros(count, np.int64)
    np.add.at(out, groups, values)
    return out.tolist()


class SpanTable:
    """Span records held as an Arrow table of the ``llm_spans`` columns (``storage.rows.records_to_arrow``'s).

    A :class:`~llm_cost_tracker.types.WireRecords`: the writer reads identities and spend rows from its
    columns, inserts :meth:`to_arrow` as it is, and builds SpanRecords (:meth:`to_records`) only to park it.
    """

    __slots__ = ("table", "_codes")

    def __init__(self, table: pa.Table, codes: dict[str, tuple[np.ndarray, list[str]]] | None = None) -> None:
        self.table = table
        self._codes = codes
        """Per row, the index of its value among the distinct values of ``tenant``, ``service_name``, ``provider``
        and ``model`` (the response model, else the request model), when whoever built the table knew them (the
        columnar path does); worked out from the columns otherwise."""

    def codes(self, name: str) -> tuple[np.ndarray, list[str]]:
        """Each row's index into the distinct values of column ``name`` (or ``model``), and those values."""
        if self._codes is not None and name in self._codes:
            return self._codes[name]
        t = self.table
        if name == "model":
            return _codes(pc.if_else(pc.equal(t.column("response_model"), ""), t.column("request_model"),
                                     t.column("response_model")))
        return _codes(t.column(name))

    @classmethod
    def concat(cls, parts: Sequence[SpanTable | tuple[list[SpanRecord], AttributeColumns | None]]) -> SpanTable:
        """One table of ``parts`` in order: tables as they are, lists of records (with the attribute columns they
        were decoded with, when any) built into theirs."""
        tables = _aligned([p.table if isinstance(p, SpanTable) else records_to_arrow(p[0], () if p[1] is None
                                                                                    else [p[1]]) for p in parts])
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
        end = self.table.num_rows if length is None else start + length
        codes = None if self._codes is None else {k: (c[start:end], d) for k, (c, d) in self._codes.items()}
        return SpanTable(self.table.slice(start, length), codes)

    def _column(self, name: str) -> list[object]:
        column = self.table.column(name)
        if pa.types.is_dictionary(column.type):  # (its ``to_pylist`` makes each row's string on its own: ~40x slower)
            column = column.cast(column.type.value_type)
        return column.to_pylist()  # type: ignore[no-any-return]

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

    def spend_groups(self) -> list[SpendGroup] | None:
        """The rows' spend summed per (tenant, service, provider, model, status, cost is None), groups in the order
        of their first row, duplicates left out: what ``SpendCollector.observe_records`` sums of the same records.
        None when a row must be counted on its own (a partial price names what it misses, a reported cost may
        disagree) or a sum could leave int64: then :meth:`spend_rows`."""
        t = self.table
        if not t.num_rows:
            return []
        status, statuses = _codes(t.column("pricing_status"))
        reported, has_reported = _words(t.column("reported_cost_usd"))
        if PARTIAL in statuses or (PRICED in statuses and has_reported[status == statuses.index(PRICED)].any()):
            return None
        keep = np.ones(len(status), bool) if DUPLICATE not in statuses else status != statuses.index(DUPLICATE)
        cost, valid = _words(t.column("cost_usd"))
        columns = [self.codes(name) for name in ("tenant", "service_name", "provider", "model")]
        codes = [c[keep] for c, _ in columns] + [status[keep], (~valid[keep]).astype(np.int64)]
        groups, firsts = group_rows(codes, [len(d) for _, d in columns] + [len(statuses), 2])
        count = len(firsts)
        sums = [_sums(t.column(name).to_numpy().astype(np.int64)[keep], groups, count) for name in _TOKENS]
        spent = _sums(np.where(valid[keep], cost[keep], 1), groups, count)  # (a null cost counts one span)
        if spent is None or any(s is None for s in sums):
            return None
        out: list[SpendGroup] = []
        for g, row in enumerate(firsts.tolist()):
            key = (columns[0][1][codes[0][row]], columns[1][1][codes[1][row]], columns[2][1][codes[2][row]],
                   columns[3][1][codes[3][row]], statuses[codes[4][row]], bool(codes[5][row]))
            out.append((key, [s[g] for s in sums] + [spent[g]]))  # type: ignore[index]
        return out

    def cost_by(self, bucket_ns: int) -> dict[tuple[str, str, str, str, int], int]:
        """The rows' cost summed per (tenant, service, provider, model, start time // ``bucket_ns``), for the rows
        with a cost other than 0 (the spend ledger's entries)."""
        t = self.table
        cost, valid = _words(t.column("cost_usd"))
        keep = valid & (cost != 0)
        if not keep.any():
            return {}
        columns = [self.codes(name) for name in ("tenant", "service_name", "provider", "model")]
        buckets = t.column("timestamp").cast(pa.int64()).to_numpy()[keep] // bucket_ns
        first_bucket = int(buckets.min())
        if int(buckets.max()) - first_bucket < 4096:  # (a request's or a batch's spans: a bucket or a few)
            bucket_codes, bucket_of = np.arange(first_bucket, int(buckets.max()) + 1), buckets - first_bucket
        else:
            bucket_codes, bucket_of = np.unique(buckets, return_inverse=True)
        codes = [c[keep] for c, _ in columns] + [bucket_of.reshape(-1)]
        groups, firsts = group_rows(codes, [len(d) for _, d in columns] + [len(bucket_codes)])
        spent = _sums(cost[keep], groups, len(firsts))
        if spent is None:  # (beyond int64: Python's integers)
            spent = [0] * len(firsts)
            for g, c in zip(groups.tolist(), cost[keep].tolist(), strict=True):
                spent[g] += c
        return {(columns[0][1][codes[0][row]], columns[1][1][codes[1][row]], columns[2][1][codes[2][row]],
                 columns[3][1][codes[3][row]], int(bucket_codes[codes[4][row]])): spent[g]
                for g, row in enumerate(firsts.tolist())}

    def subset(self, keep: Sequence[int]) -> SpanTable:
        """The rows at positions ``keep``, in that order."""
        return SpanTable(self.table.take(pa.array(keep, type=pa.int64())))

    def to_arrow(self) -> pa.Table:
        """The table to insert: each dictionary-encoded column with one dictionary for all its chunks."""
        t = self.table
        return t.unify_dictionaries() if _has_dictionaries(t.schema) else t

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
