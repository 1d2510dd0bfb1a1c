"""Span identity: which spans of a batch are first arrivals, i.e. not already in ``llm_spans``.

A span is the same span when its (tenant, trace id, span id, start time) are the same: a collector
retrying an Export, a receiver restarted between two sends, a Kafka redelivery cut at other offsets,
or the same spans sent to the all-in-one service and to the Kafka path. The writer asks
:class:`FirstArrivals` once per batch, before the insert, and writes (and counts in the metrics) only
what it returns; the rollups are fed by that insert, and budgets read the table, so the four agree.

Where the check looks (the dedup window): the span's own start time. Every earlier copy has the same
start time, so it is found wherever it is in ``llm_spans``, however long ago it arrived, for as long
as the table keeps it (``ttl_raw_days``). Exact when one writer at a time writes a given span: the
all-in-one service has one writer thread, and Kafka receivers put a trace's spans on one partition,
which one consumer writes at a time (docs/schema.md, "Span identity").

A copy stored by an earlier attempt of the *same* batch is not a repeat: each row keeps the hash of
the insert token that stored it (``insert_token``, migration 0007), and such spans stay in the batch,
which is sent again under the same token. The raw insert is then a no-op (insert deduplication) while
the rollup views, which a writer killed between the two inserts never fed, are completed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, PARTIAL
from llm_cost_tracker.storage.client import is_embedded, sql_string
from llm_cost_tracker.storage.scratch import arrow_file
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.types import PRICED, Key, Records, SpanRecord, SpendRow

__all__ = ["FirstArrivals", "Key", "SpendRow", "identity_keys", "lookup_route", "spend_rows", "subset", "time_ranges",
           "token_hash"]


_FIELDS = "SELECT tenant, trace_id, span_id, toUnixTimestamp64Nano(timestamp), insert_token FROM {table} WHERE "
_LOOKUP = _FIELDS + "{{window}} AND tenant IN {{tenants:Array(String)}} AND trace_id IN {{traces:Array(String)}}"
_CHUNK = 2048
"""Trace ids per bound-list query (keeps the bound parameters well under HTTP and query size limits)."""
_KEYS_STRUCTURE = "tenant String, trace_id String"
_JOIN = (_FIELDS + "{{window}} AND (tenant, trace_id) IN (SELECT tenant, trace_id FROM file({{keys}}, 'Arrow', "
         f"'{_KEYS_STRUCTURE}'))")
"""The embedded store's lookup: the batch's (tenant, trace id) pairs from a temporary Arrow file, read by the
query itself (one statement a batch, where a scratch table took three: truncate, insert, select)."""
GAP_NS = 60 * 10**9
"""Start times further apart than this are looked up as separate time ranges (see :func:`time_ranges`)."""
MAX_RANGES = 16
"""Time ranges per lookup at most: past it the closest ranges are merged (a bound on the query's size)."""


def time_ranges(times: Sequence[int] | np.ndarray, gap_ns: int = GAP_NS, most: int = MAX_RANGES) -> list[tuple[int, int]]:
    """The start times of a batch as a few ``(lo, hi)`` ranges that cover them all, split where they are
    more than ``gap_ns`` apart (the ``most - 1`` widest gaps at most).

    The lookup reads the table's granules in its time window, so one window from the earliest to the
    latest span would make its cost grow with everything stored in between: a span of an hour ago in
    a batch of this second's (a client's clock off by an hour, a collector draining its retry queue)
    would read an hour of rows, on every batch. Per range, a batch reads only its own neighbourhood.
    """
    # sorted, not made unique: a repeated time leaves a gap of 0, never a cut, so the ranges are the same,
    # and np.unique cost ten times np.sort (0.14 us per span of a 20,000-span batch, on the writer's GIL)
    ordered = np.sort(np.asarray(times, dtype=np.int64))
    if not len(ordered):
        return []
    gaps = np.diff(ordered)
    cuts = np.flatnonzero(gaps > gap_ns)
    if len(cuts) >= most:
        cuts = np.sort(cuts[np.argsort(gaps[cuts], kind="stable")[len(cuts) - (most - 1):]])
    los = [int(ordered[0]), *ordered[cuts + 1].tolist()]
    his = [*ordered[cuts].tolist(), int(ordered[-1])]
    return list(zip(los, his, strict=True))


def _window(ranges: list[tuple[int, int]]) -> tuple[str, dict[str, int]]:
    """The WHERE clause of ``ranges`` (an OR of closed time ranges) and its bound parameters."""
    clauses = [f"timestamp BETWEEN fromUnixTimestamp64Nano({{lo{i}:Int64}}, 'UTC') "
               f"AND fromUnixTimestamp64Nano({{hi{i}:Int64}}, 'UTC')" for i in range(len(ranges))]
    parameters = {f"{edge}{i}": value for i, (lo, hi) in enumerate(ranges) for edge, value in (("lo", lo), ("hi", hi))}
    return "(" + " OR ".join(clauses) + ")", parameters


def lookup_route(client: Any) -> str:
    """How :class:`FirstArrivals` hands a batch's trace ids to ``client``'s store.

    ``"table"`` (embedded chDB: a semi-join on a temporary Arrow file of the pairs, read with ``file()``) or
    ``"bound"`` (a server: the ids as bound list parameters, 2,048 traces per query). The first costs about a
    seventh of the second: ClickHouse parses a bound list of 10,000 ids as SQL text, and clickhouse-connect
    escapes each one in Python (measured in ``benchmarks/stages.py``). A server is shared by several writers
    (and may sit behind a load balancer), so it keeps the stateless bound query; an external table sent with
    the query would suit it, and is left for when a server can run in the test suite.
    """
    return "table" if is_embedded(client) else "bound"


def _found(rows: Iterable[Sequence[Any]]) -> dict[Key, int]:
    """Lookup rows (tenant, trace id, span id, start ns, insert_token) as identity -> insert_token."""
    return {(str(t), str(tr), str(s), int(ns)): int(h) for t, tr, s, ns, h in rows}


def token_hash(token: str) -> int:
    """The ``insert_token`` column's value for an insert under ``token`` (0 for no token)."""
    if not token:
        return 0
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")


_IDENTITY = attrgetter("tenant", "trace_id", "span_id", "start_time_ns")
_TENANT, _TRACE, _START = itemgetter(0), itemgetter(1), itemgetter(3)


def identity_keys(records: Records) -> list[Key]:
    """The identity of each record, in order."""
    if isinstance(records, list):
        return list(map(_IDENTITY, records))  # a C loop: half a comprehension's cost, for every span written
    return records.identity_keys()


def subset(records: Records, keep: Sequence[int]) -> Records:
    """The records at positions ``keep``, in the same form."""
    if isinstance(records, list):
        return [records[i] for i in keep]
    return records.subset(keep)


def spend_rows(records: Records) -> list[SpendRow]:
    """What the spend metrics count of each record."""
    if isinstance(records, list):
        return [_spend_row(r) for r in records]
    return records.spend_rows()


def _spend_row(r: SpanRecord) -> SpendRow:
    u = r.usage
    status = r.pricing_status
    return (r.tenant, r.service_name, r.provider, r.response_model or r.request_model, u.input_tokens,
            u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens, r.cost_pusd,
            status, r.attributes.get(MISSING_ATTRIBUTE, "") if status == PARTIAL else "",
            r.reported_cost_pusd if status == PRICED else None)


class FirstArrivals:
    """Filters a batch down to the spans ``table`` does not hold yet (and to one copy of each within it).

    Args:
        client: a clickhouse-connect client on the store (used from the writer's thread only).
        table: the raw table.
    """

    __slots__ = ("_client", "_join", "_sql", "route")

    def __init__(self, client: Any, table: str = "llm_spans") -> None:
        self._client = client
        self._sql = _LOOKUP.format(table=table)
        self.route = lookup_route(client)
        self._join = _JOIN.format(table=table)

    def stored(self, keys: Iterable[Key]) -> dict[Key, int]:
        """Which of ``keys`` the table already holds, each with the ``insert_token`` hash of the insert that
        stored it (one query, or one per 2,048 trace ids on the ``bound`` route)."""
        keys = list(keys)
        if not keys:
            return {}
        return self._stored_bound(keys) if self.route == "bound" else self._stored_table(keys)

    def _stored_table(self, keys: list[Key]) -> dict[Key, int]:
        return self._joined(pa.array(list(map(_TENANT, keys)), pa.string()), pa.array(list(map(_TRACE, keys)), pa.string()),
                            list(map(_START, keys)))

    def _joined(self, tenants: pa.Array | pa.ChunkedArray, traces: pa.Array | pa.ChunkedArray,
                starts: Sequence[int] | np.ndarray) -> dict[Key, int]:
        """The embedded lookup of the spans of these (tenant, trace id) pairs started around ``starts``."""
        window, parameters = _window(time_ranges(starts))
        path = arrow_file(pa.table({"tenant": tenants, "trace_id": traces}), "keys")
        try:
            return _found(self._client.query(self._join.replace("{window}", window).replace("{keys}", sql_string(path)),
                                             parameters=parameters).result_rows)
        finally:
            os.unlink(path)

    def _stored_bound(self, keys: list[Key]) -> dict[Key, int]:
        by_trace: dict[str, list[Key]] = {}
        for key in keys:
            by_trace.setdefault(key[1], []).append(key)
        traces = list(by_trace)
        found: dict[Key, int] = {}
        for start in range(0, len(traces), _CHUNK):
            chunk = [k for t in traces[start:start + _CHUNK] for k in by_trace[t]]
            window, parameters = _window(time_ranges([k[3] for k in chunk]))
            rows = self._client.query(self._sql.replace("{window}", window), parameters={
                **parameters, "tenants": sorted({k[0] for k in chunk}), "traces": traces[start:start + _CHUNK]}).result_rows
            found.update(_found(rows))
        return found

    def __call__(self, records: Records, token: str = "") -> tuple[Records, int]:
        """(the first arrivals of ``records`` in their form, how many were left out as already seen).

        ``token`` is the batch's insert token: spans an earlier attempt stored under it are kept (see the
        module's docstring).
        """
        if isinstance(records, SpanTable) and self.route == "table" and len(records):
            t = records.table  # (its columns, not a tuple per span, unless some span may be a copy)
            tenants = t.column("tenant")
            stored = self._joined(tenants.cast(pa.string()) if pa.types.is_dictionary(tenants.type) else tenants,
                                  t.column("trace_id"), t.column("timestamp").cast(pa.int64()).to_numpy())
            spans = t.column("span_id")
            if len(pc.unique(spans)) == len(spans) and not (stored and pc.any(pc.is_in(spans, value_set=pa.array(
                    [key[2] for key in stored], pa.string()))).as_py()):
                return records, 0  # no span id twice, none among the stored spans of these traces: all new
            keys = records.identity_keys()
        else:
            keys = identity_keys(records)
            if not keys:
                return records, 0
            stored = self.stored(keys)
            if not stored and len(set(keys)) == len(keys):  # the usual batch: all new, no copies within it
                return records, 0
        ours = token_hash(token) or None  # rows of an earlier attempt of this batch (no token: none)
        seen: set[Key] = set()
        keep: list[int] = []
        for i, key in enumerate(keys):
            if key in seen or (key in stored and stored[key] != ours):
                continue
            seen.add(key)
            keep.append(i)
        if len(keep) == len(keys):
            return records, 0
        return subset(records, keep), len(keys) - len(keep)
