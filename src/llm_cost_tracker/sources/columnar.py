"""The columnar path: a scanned request's spans to their ``llm_spans`` rows with no Python object per span.

Why: on the record path every span becomes a dict of attributes and a ``SpanRecord``, each stage reads and
writes it, and the writer reads it back into Arrow columns 20,000 spans later; that is most of the ~20 us of
Python a span costs the receiver (docs/performance.md). Here each stage asks its question once per distinct
thing (set of keys, value, name, model, resource) over the wire scan's tables, the answers reach the rows by
array indexing, and the rows leave as one Arrow table (``storage.table.SpanTable``) that the writer inserts
as it is: the same rows, byte for byte, as the record path stores (``tests/sources/test_columnar.py``
compares the two on generated requests).

It decides only what every stage can decide from the columns: for a request where any span needs more (a
count that is not a plain integer, two keys for one name, a producer quirk, a secret in a name, an attribute
redaction changes or drops, a price that is not a plain standard one, a span the store's time bounds refuse,
a key repeated on the wire...), :meth:`ColumnarPath.prepare` returns None and the whole request takes the
record path, which decides it span by span under the chain's rules. Spans that are not LLM calls are left
out and counted, as the chain does.

Three steps, so that a failure is decided in one place: :meth:`ColumnarPath.prepare` reads and computes and
changes nothing (any exception there means "use the record path"); :meth:`ColumnarPath.file` files the
request's spans in call identity's window and counts what redaction masked; :meth:`ColumnarPath.rows` builds
the table and changes nothing (should it fail, the receiver has call identity forget the request's spans).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from llm_cost_tracker.sources.otlp_decode import MAX_START_NS, DecodedBatch, DecodeLimits
from llm_cost_tracker.sources.otlp_records import (
    object_array,
    over_limits,
    rendered_values,
    utf8_strings,
    wire_ints,
)
from llm_cost_tracker.sources.otlp_scan import (
    A_KEY_LEN,
    A_KEY_OFF,
    C_NAME_LEN,
    C_NAME_OFF,
    N_KEYS,
    N_NAMES,
    R_ATTR_BEGIN,
    R_ATTR_END,
    S_ATTR_BEGIN,
    S_ATTR_END,
    S_END,
    S_NAME_LEN,
    S_NAME_OFF,
    S_PARENT_LEN,
    S_PARENT_OFF,
    S_RESOURCE,
    S_SCOPE,
    S_SPAN_LEN,
    S_SPAN_OFF,
    S_START,
    S_STATUS,
    S_TRACE_LEN,
    S_TRACE_OFF,
    WireScan,
    number,
)
from llm_cost_tracker.sources.span_time import SpanTimeBounds
from llm_cost_tracker.storage.rows import COST_TYPE, STRING_COLUMNS, entry_positions, pico_to_decimal_array
from llm_cost_tracker.storage.table import (
    DICTIONARY,
    SpanTable,
    coded_column,
    dictionary_column,
    distinct_codes,
    group_rows,
)
from llm_cost_tracker.transforms import detect as _detect
from llm_cost_tracker.transforms import usage as _usage
from llm_cost_tracker.transforms._keyed import row_masks
from llm_cost_tracker.transforms._value_gate import gate_rows
from llm_cost_tracker.transforms.calls import (
    DUPLICATE_OF,
    DUPLICATE_OF_TRACE,
    DUPLICATE_RULE,
    RESPONSE_ID,
    CallColumns,
    CallIdentity,
    HexIds,
    SpanIds,
    call_columns,
    hex_hashes,
)
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import PRICING_ATTRIBUTES, Price
from llm_cost_tracker.transforms.quirks import Quirks
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.transforms.scrub import ScrubNames
from llm_cost_tracker.transforms.usage import ExtractUsage
from llm_cost_tracker.types import DUPLICATE, NO_USAGE, PRICED, AttributeColumns, Transform

__all__ = ["MAX_SPANS", "ColumnarPath", "Columnar", "Prepared"]

_SDK = "telemetry.sdk.name"
_MARKS = (DUPLICATE_OF, DUPLICATE_OF_TRACE, DUPLICATE_RULE)
_STATUSES = (NO_USAGE, PRICED, DUPLICATE)
"""``pricing_status`` by code: the only outcomes this path gives (anything else takes the record path)."""
_NO_USAGE, _PRICED, _DUPLICATE = range(3)
_TIMESTAMP = pa.timestamp("ns", "UTC")
_MAP_TYPE = pa.map_(DICTIONARY, pa.string())
"""The attribute maps' type: keys dictionary-encoded (``LowCardinality`` in the store), values plain."""
MAX_SPANS = 16_384
"""Spans of the biggest request the path takes (a collector's batches are ~8,192 at most by default); bigger
ones take the stages. Why: the path's temporaries grow with the request (~100-180 MiB at 36,000 spans) and
are allocated on the receiving threads, whose allocators keep freed pages for reuse, a heap per thread:
``benchmarks/attack.py``'s six concurrent 13 MiB requests peaked at 1,000-1,066 MiB through the path
against 848-867 through the stages (docs/performance.md)."""


def _distinct(ix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``ix`` (ints in ``[0, size)``), increasing, and each item's position among them:
    ``np.unique(ix, return_inverse=True)`` in two linear passes (its sort or hash costs ~0.1 ms a call)."""
    present = np.zeros(size, bool)
    present[ix] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[ix]


def _decimal(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Exact Decimal128(38, 12) of integer pico-USD, null where not ``valid``."""
    return pico_to_decimal_array(pa.array(values, pa.int64(), mask=~valid))


def _hex_column(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> tuple[str, np.ndarray, pa.Array]:
    """The ids of ``lengths`` bytes at ``offsets`` as hex: one text, end to end, the character where each id ends
    (call identity hashes the ids in the text, and names a carrier by a slice of it), and the Arrow column made
    straight from the text (no string per id)."""
    n = len(offsets)
    ends = np.zeros(n + 1, np.int32)
    np.cumsum(2 * lengths, out=ends[1:])
    gather = np.repeat(offsets - ends[:-1] // 2, lengths) + np.arange(int(ends[-1]) // 2)
    text = buf[gather].tobytes().hex()
    column = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(ends), pa.py_buffer(text.encode("ascii"))])
    return text, ends[1:], column


def _strings_of(pool: list[str], ix: np.ndarray) -> pa.Array:
    """``pool[ix]`` as a plain string column (the attribute values: mostly distinct, a dictionary would not pay)."""
    return pa.array(pool, pa.string()).take(pa.array(ix))


def _maps_of(dicts: list[dict[str, str]], ix: np.ndarray) -> pa.Array:
    """``dicts[ix]`` as a map column, its keys dictionary-encoded (the resources' attributes: a few dicts)."""
    keys: dict[str, int] = {}
    codes = [keys.setdefault(k, len(keys)) for d in dicts for k in d]
    offsets = np.zeros(len(dicts) + 1, np.int32)
    np.cumsum([len(d) for d in dicts], out=offsets[1:])
    maps = pa.MapArray.from_arrays(pa.array(offsets), pa.DictionaryArray.from_arrays(
        pa.array(codes, pa.int32()), pa.array(list(keys), pa.string())),
        pa.array([v for d in dicts for v in d.values()], pa.string()), type=_MAP_TYPE)
    return maps.take(pa.array(ix))


@dataclass(slots=True)
class Prepared:
    """A request :meth:`ColumnarPath.prepare` decided: its rows' columns before call identity."""

    n: int
    """Rows (the request's LLM spans)."""
    columns: dict[str, pa.Array]
    """Every ``llm_spans`` column but the four call identity may change (status, costs, attributes)."""
    status: np.ndarray
    """Per row, the index of its ``pricing_status`` in ``_STATUSES`` (no usage or priced, before call identity)."""
    cost: np.ndarray
    """Per row, its cost in pico-USD (meaningful where priced)."""
    savings: np.ndarray
    """Per row, its cache savings in pico-USD (meaningful where priced)."""
    key_pool: list[str]
    value_pool: list[str]
    slot_keys: np.ndarray
    """Per attribute, row by row in wire order, the index of its key in ``key_pool``."""
    slot_values: np.ndarray
    """... and of its value in ``value_pool``."""
    lengths: np.ndarray
    """Attributes per row."""
    calls: CallColumns
    """What call identity reads of the rows (their ids, keys, flags, token counts and times)."""
    resource_counts: dict[tuple[str, str], int]
    other: int
    codes: dict[str, tuple[np.ndarray, list[str]]]
    """What ``SpanTable.codes`` answers of the rows (the spend ledger and metrics group by them)."""


@dataclass(frozen=True, slots=True)
class Columnar:
    """A request through the columnar path: its rows, and how many of its spans were not LLM spans."""

    table: SpanTable
    other: int
    ids: SpanIds
    """(trace id, span id) of each row (``ids.pairs()``): what call identity forgets when the request is not
    accepted."""


class ColumnarPath:
    """The stages of ``transforms`` (the default chain: detect, usage, quirks, scrub, price, redact) and call
    identity, over a scanned request's columns.

    Args:
        transforms: the receivers' stages; :meth:`build` returns None unless they are exactly the default ones.
        calls: call identity (None: none is run, as in the chain).
        limits: the decoder's limits (the tenant attribute; a request they would cut is declined).
        time_bounds: the start times the store accepts (a request with a span outside them is declined).
    """

    def __init__(self, detect: Detect, usage: ExtractUsage, quirks: Quirks, scrub: ScrubNames, price: Price,
                 redact: Redact, calls: CallIdentity | None, limits: DecodeLimits,
                 time_bounds: SpanTimeBounds | None = None) -> None:
        self._quirks, self._scrub, self._price, self._redact = quirks, scrub, price, redact
        self._calls = calls
        self._limits = limits
        self._time_bounds = time_bounds
        self._detect_names = tuple(sorted(_detect.CALL_KEYS))
        self._usage_names = tuple(sorted(_usage.KEYED_KEYS))
        self._plans: dict[int, Any] = {}

    @classmethod
    def build(cls, transforms: list[Transform], calls: CallIdentity | None, limits: DecodeLimits,
              time_bounds: SpanTimeBounds | None = None) -> ColumnarPath | None:
        """The path for these stages, or None when they are not the default chain (another order, a stage more
        or less): then every request takes the record path."""
        kinds = (Detect, ExtractUsage, Quirks, ScrubNames, Price, Redact)
        if len(transforms) != len(kinds) or not all(type(t) is k for t, k in zip(transforms, kinds, strict=True)):
            return None
        detect, usage, quirks, scrub, price, redact = transforms
        assert isinstance(detect, Detect) and isinstance(usage, ExtractUsage) and isinstance(quirks, Quirks)
        assert isinstance(scrub, ScrubNames) and isinstance(price, Price) and isinstance(redact, Redact)
        if price.reported_cost_fallback:
            return None  # (an unresolved model priced from its reported cost: the record path's)
        return cls(detect, usage, quirks, scrub, price, redact, calls, limits, time_bounds)

    def prepare(self, scan: WireScan, payload: bytes, tenant: str | None) -> Prepared | None:  # noqa: C901, PLR0912, PLR0915
        """The request's rows before call identity, or None: the record path decides it. Changes nothing.

        ``tenant``: the tenant every span gets (the caller's token decides it), or None for the payload's."""
        limits = self._limits
        if over_limits(scan, limits):
            return None
        s, a, buf = scan.spans, scan.attributes, scan.buffer
        n = len(s)
        if not n or n > MAX_SPANS:
            return None
        starts = s[:, S_START].view(np.uint64)
        if not ((s[:, S_TRACE_LEN] == 16) & (s[:, S_SPAN_LEN] == 8) & (starts <= MAX_START_NS)).all():
            return None  # rejections: the record path words them
        if self._time_bounds is not None:
            earliest, latest = self._time_bounds.bounds()
            if int(starts.min()) < earliest or int(starts.max()) > latest:
                return None
        numbering = number(scan, payload, np.ones(len(a), bool))
        if numbering is None:
            return None
        batch = DecodedBatch()
        value_pool = rendered_values(scan, payload, numbering, limits, batch)
        if value_pool is None or batch.truncated_attributes:
            return None
        key_pool = utf8_strings(payload, a[numbering.firsts[N_KEYS], A_KEY_OFF], a[numbering.firsts[N_KEYS], A_KEY_LEN])
        if not PRICING_ATTRIBUTES.isdisjoint(key_pool) or _SDK in key_pool or not set(_MARKS).isdisjoint(key_pool):
            return None  # pricing attributes, OpenLIT's spans, marks a client set: the record path's
        key_ids, value_ids = numbering.key_ids, numbering.value_ids
        kp, vp = object_array(key_pool), object_array(value_pool)
        resources = [dict(zip(kp[key_ids[b:e]].tolist(), vp[value_ids[b:e]].tolist(), strict=True))
                     for b, e in scan.resources[:, [R_ATTR_BEGIN, R_ATTR_END]].tolist()]
        if any(r.get(_SDK) == "openlit" for r in resources):
            return None
        begins, ends = s[:, S_ATTR_BEGIN], s[:, S_ATTR_END]
        lengths = ends - begins
        slots = entry_positions(begins, lengths)
        row_of_slot = np.repeat(np.arange(n), lengths)
        slot_keys, slot_values = key_ids[slots], value_ids[slots]
        width = len(key_pool) + 1
        if len(slot_keys) and int(np.bincount(row_of_slot * width + slot_keys).max()) > 1:
            return None  # a key repeated within a span (its dict keeps the last value): the record path's
        key_index = {k: i for i, k in enumerate(key_pool)}

        looked_up: dict[str, np.ndarray] = {}  # (emptied when rows are left out)

        def value_of(key: str) -> np.ndarray:
            """Per row, the value id of ``key`` (-1: the span has no such key); each key looked up once."""
            out = looked_up.get(key)
            if out is None:
                out = looked_up[key] = np.full(n, -1, np.int64)
                k = key_index.get(key)
                if k is not None:
                    hit = np.flatnonzero(slot_keys == k)
                    out[row_of_slot[hit]] = slot_values[hit]
            return out

        def masks(names: tuple[str, ...]) -> np.ndarray:
            """Per row, which of ``names`` it has (bit j: ``names[j]``)."""
            weights = np.zeros(width, np.int64)
            for j, name in enumerate(names):
                k = key_index.get(name)
                if k is not None:
                    weights[k] = 1 << j
            bounds = np.zeros(n + 1, np.int64)
            np.cumsum(lengths, out=bounds[1:])
            return row_masks(weights[slot_keys], bounds[:-1], bounds[1:])

        # detect: a model or usage key, and no kind key naming an aggregate (those spans are left out, counted)
        llm = masks(self._detect_names) != 0
        for key in _detect.KIND_KEYS:
            kinds = value_of(key)
            for v in set(kinds[kinds >= 0].tolist()):
                if _detect.is_aggregate(value_pool[v]):
                    llm[kinds == v] = False
        other = int(n - np.count_nonzero(llm))
        if other:
            if not other < n:
                return None  # (no LLM span: nothing to store; the record path counts them)
            keep = np.flatnonzero(llm)
            s, starts, lengths, begins = s[keep], starts[keep], lengths[keep], begins[keep]
            slots = entry_positions(begins, lengths)
            row_of_slot = np.repeat(np.arange(len(keep)), lengths)
            slot_keys, slot_values = key_ids[slots], value_ids[slots]
            n = len(keep)
            looked_up.clear()
        # usage: a plan per distinct set of its keys; the counts of each distinct value parsed once
        usage_masks = masks(self._usage_names)
        count_ids = np.full((5, n), -2, np.int64)  # value ids; -2: the key is absent (0)
        name_ids = np.full((4, n), -1, np.int64)
        dialect_of = np.zeros(n, np.int64)
        dialects: list[str] = []
        for m in set(usage_masks.tolist()):
            plan = self._plans.get(m)
            if plan is None:
                plan = _usage.Plan(tuple(name for j, name in enumerate(self._usage_names) if m >> j & 1))
                if len(self._plans) < 1024:
                    self._plans[m] = plan
            if plan.names is None or plan.reported_cost:
                return None
            members = np.flatnonzero(usage_masks == m)
            for f, key in enumerate(plan.counts):
                if key is not None:
                    count_ids[f, members] = value_of(key)[members]
            for f, key in enumerate(plan.names):
                if key is not None:
                    name_ids[f, members] = value_of(key)[members]
            if plan.dialect not in dialects:
                dialects.append(plan.dialect)
            dialect_of[members] = dialects.index(plan.dialect)
        as_int = np.zeros(len(value_pool) + 2, np.int64)  # the last entry (-2 as an index): an absent key, 0
        used = count_ids[count_ids >= 0]
        needed = np.flatnonzero(np.bincount(used, minlength=len(value_pool))) if len(used) else used
        first_int, ints = wire_ints(numbering, scan)
        on_wire = (needed >= first_int) & (needed < first_int + len(ints))  # integers on the wire: no text parsed
        counts = ints[needed[on_wire] - first_int]
        if len(counts) and not (int(counts.min()) >= 0 and int(counts.max()) < _usage.FAST_BOUND):
            return None
        as_int[needed[on_wire]] = counts
        for v in needed[~on_wire].tolist():  # a count sent as text (or a float): parse_token_count's rules
            try:
                count = int(value_pool[v])
            except ValueError:
                return None  # a float or not a number: parse_token_count's (and its rejections)
            if not 0 <= count < _usage.FAST_BOUND:
                return None
            as_int[v] = count
        inp, out, cache_read, cache_write, reasoning = as_int[count_ids]
        cached = cache_read + cache_write
        inp = np.where(cached > inp, inp + cached, inp)
        out = np.where(reasoning > out, out + reasoning, out)

        def names_of(f: int, lower: bool) -> tuple[list[str], np.ndarray]:
            distinct, index = _distinct(name_ids[f] + 1, len(value_pool) + 1)
            return [("" if v == 0 else value_pool[v - 1].lower() if lower else value_pool[v - 1])
                    for v in distinct.tolist()], index

        providers, provider_of = names_of(0, True)
        operations, operation_of = names_of(1, True)
        requested, requested_of = names_of(2, False)
        responded, responded_of = names_of(3, False)
        # tenants: the caller's, else each resource's attribute, else the span's
        resource_of = s[:, S_RESOURCE]
        services = [r.get("service.name", "unknown_service") for r in resources]
        if tenant is not None:
            tenants, tenant_of = [tenant], np.zeros(n, np.int64)
        else:
            by_resource = [r.get(limits.tenant_attribute, "") for r in resources]
            if all(by_resource) or limits.tenant_attribute not in key_index:
                tenants, tenant_of = by_resource, resource_of
            else:
                own = value_of(limits.tenant_attribute)  # a resource without one: the span's own, else ""
                named = np.asarray([bool(t) for t in by_resource])[resource_of]
                pool = by_resource + value_pool
                distinct, tenant_of = _distinct(np.where(named | (own < 0), resource_of, len(by_resource) + own),
                                                len(pool))
                tenants = [pool[i] for i in distinct.tolist()]
        scopes = [payload[o:o + length].decode()[:256] for o, length in
                  zip(scan.scopes[:, C_NAME_OFF].tolist(), scan.scopes[:, C_NAME_LEN].tolist(), strict=True)]
        scope_of = s[:, S_SCOPE]
        name_rows = numbering.firsts[N_NAMES]
        span_names = utf8_strings(payload, scan.spans[name_rows, S_NAME_OFF], scan.spans[name_rows, S_NAME_LEN])
        span_name_of = numbering.name_ids if not other else numbering.name_ids[keep]
        # quirks: none may concern a span (asked once per distinct provider, operation and scope)
        _, first = group_rows([provider_of, operation_of, scope_of], [len(providers), len(operations), len(scopes)])
        for p, o, c in zip(provider_of[first].tolist(), operation_of[first].tolist(), scope_of[first].tolist(),
                           strict=True):
            if self._quirks.concerns(providers[p], operations[o], scopes[c], False):
                return None
        # scrub: each distinct tuple of names holds nothing
        _, first = group_rows([span_name_of, resource_of, tenant_of, requested_of, responded_of, provider_of,
                               operation_of],
                              [len(span_names), len(resources), len(tenants), len(requested), len(responded),
                               len(providers), len(operations)])
        for row in first.tolist():
            names = (span_names[span_name_of[row]], services[resource_of[row]], tenants[tenant_of[row]],
                     requested[requested_of[row]], responded[responded_of[row]], providers[provider_of[row]],
                     operations[operation_of[row]])
            if self._scrub.names_outcome(names) is not None:
                return None
        # price: the entry code per distinct (tenant, provider, response model, request model), then the
        # array engine per tenant, each row's cache reads quoted again without them (their savings)
        catalog = self._price.catalog()
        name_group, first = group_rows([tenant_of, provider_of, responded_of, requested_of],
                                       [len(tenants), len(providers), len(responded), len(requested)])
        group_codes = np.empty(len(first), np.int64)
        resolved: list[str] = []  # per group, the name that resolved (the response model first)
        for g, row in enumerate(first.tolist()):
            code = -1
            for name in (responded[responded_of[row]], requested[requested_of[row]]):
                if name:
                    code = catalog.code_of(providers[provider_of[row]], name, tenants[tenant_of[row]])
                    if code != -1:
                        resolved.append(name)
                        break
            if code == -1:
                return None  # unpriced: reported once, by the record path
            group_codes[g] = code
        codes = group_codes[name_group]
        at = starts.astype(np.int64)
        cost = np.zeros(n, np.int64)
        savings = np.zeros(n, np.int64)
        status = np.zeros(n, np.int8)
        model_of = np.zeros(n, np.int64)
        models: list[str] = []
        versions: list[str] = []
        for tenant_ix in set(tenant_of.tolist()):
            rows = np.flatnonzero(tenant_of == tenant_ix)
            reads = np.flatnonzero(cache_read[rows])

            def quoted(i: int, rows: np.ndarray = rows, reads: np.ndarray = reads) -> tuple[str, str]:
                j = int(rows[i if i < len(rows) else reads[i - len(rows)]])
                return providers[provider_of[j]], resolved[name_group[j]]

            def again(x: np.ndarray, rows: np.ndarray = rows, reads: np.ndarray = reads) -> np.ndarray:
                return np.concatenate((x[rows], x[rows][reads]))

            quotes = catalog.quote_rows(again(codes), again(at), again(inp), again(out),
                                        np.concatenate((cache_read[rows], np.zeros(len(reads), np.int64))),
                                        again(cache_write), again(reasoning), tenants[tenant_ix], quoted)
            m = len(rows)
            full, priced = quotes.cost[:m], quotes.priced[:m]
            if not priced.all():
                return None  # no version in force, a dimension without a price: the per-span engine's
            no_usage = (full == 0) & (inp[rows] == 0) & (out[rows] == 0)
            cost[rows] = full
            status[rows] = np.where(no_usage, _NO_USAGE, _PRICED)
            if len(reads):
                if not quotes.priced[m:].all():
                    return None
                savings[rows[reads]] = np.where(no_usage[reads], 0, quotes.cost[m:] - full[reads])
            used_slots, slot_of = _distinct(quotes.slot[:m], len(quotes.models))
            base = len(models)
            models += [quotes.models[k] for k in used_slots.tolist()]
            versions += [quotes.versions[k] for k in used_slots.tolist()]
            model_of[rows] = slot_of + base
        # redaction: the gate over the distinct values; a flagged span is looked at on a dict of its own
        sizes = lengths.tolist()
        bounds = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=bounds[1:])
        gated = AttributeColumns(key_pool, value_pool, slot_keys.astype(np.int32), slot_values.astype(np.int32),
                                 bounds[:-1].astype(np.int32), bounds[1:].astype(np.int32), sizes, [])
        clean, flagged = gate_rows(gated, self._redact.gate_of)
        if not all(clean):
            for row in np.flatnonzero(~np.asarray(clean, bool)).tolist():
                found = flagged.get(row)
                if found is None:
                    return None  # a key redaction drops, hashes or masks whole: the record path's
                b, e = int(bounds[row]), int(bounds[row + 1])
                attrs = dict(zip(kp[slot_keys[b:e]].tolist(), vp[slot_values[b:e]].tolist(), strict=True))
                if self._redact.mask_flagged(attrs, found, {}) is not attrs:
                    return None
        resource_counts: dict[tuple[str, str], int] = {}  # (counted once per resource with spans kept)
        kept_resources = set(resource_of.tolist())
        redacted = [self._redact.redact_attributes(r, resource_counts if i in kept_resources else {})
                    for i, r in enumerate(resources)]
        # the columns (all but those call identity may change)
        trace_text, trace_ends, trace_column = _hex_column(buf, s[:, S_TRACE_OFF], s[:, S_TRACE_LEN])
        span_text, span_ends, span_column = _hex_column(buf, s[:, S_SPAN_OFF], s[:, S_SPAN_LEN])
        parent_text, parent_ends, parent_column = _hex_column(buf, s[:, S_PARENT_OFF], s[:, S_PARENT_LEN])
        end = s[:, S_END].view(np.uint64)
        durations = np.where(end >= starts, end - starts, 0).astype(np.int64)
        status_codes = s[:, S_STATUS]
        model_group, model_first = group_rows([responded_of, requested_of], [len(responded), len(requested)])
        span_models = [responded[responded_of[row]] or requested[requested_of[row]]  # (as the writer reads it)
                       for row in model_first.tolist()]
        by_row = {"tenant": distinct_codes(tenants, tenant_of), "service_name": distinct_codes(services, resource_of),
                  "provider": distinct_codes(providers, provider_of), "model": distinct_codes(span_models, model_group)}
        columns: dict[str, Any] = {
            "timestamp": pa.array(at, _TIMESTAMP),  # (not an int64 array cast: 7 against 44 us a request)
            "tenant": coded_column(*by_row["tenant"]),
            "trace_id": trace_column,
            "span_id": span_column,
            "parent_span_id": parent_column,
            "service_name": coded_column(*by_row["service_name"]),
            "span_name": dictionary_column(span_names, span_name_of),
            "operation": dictionary_column(operations, operation_of),
            "provider": coded_column(*by_row["provider"]),
            "request_model": dictionary_column(requested, requested_of),
            "response_model": dictionary_column(responded, responded_of),
            "pricing_model": dictionary_column(models, model_of),
            "price_version": dictionary_column(versions, model_of),
            "dialect": dictionary_column(dialects, dialect_of),
            "input_tokens": pa.array(inp.astype(np.uint64), pa.uint64()),
            "output_tokens": pa.array(out.astype(np.uint64), pa.uint64()),
            "cache_read_tokens": pa.array(cache_read.astype(np.uint64), pa.uint64()),
            "cache_write_tokens": pa.array(cache_write.astype(np.uint64), pa.uint64()),
            "reasoning_tokens": pa.array(reasoning.astype(np.uint64), pa.uint64()),
            "reported_cost_usd": pa.nulls(n, COST_TYPE),  # (the path declines a request that reports a cost)
            "duration_ns": pa.array(durations.astype(np.uint64), pa.uint64()),
            "status_code": pa.array(np.where((status_codes >= 0) & (status_codes <= 2), status_codes, 0).astype(np.uint8), pa.uint8()),
            "resource_attributes": _maps_of(redacted, resource_of),
        }
        # what call identity reads of each span, hashed into its keys here (outside its lock)
        rid_used, rid_of = _distinct(value_of(RESPONSE_ID) + 1, len(value_pool) + 1)  # (0: no response id)
        id_hashes = np.stack((hex_hashes(trace_text, trace_ends), hex_hashes(span_text, span_ends),
                              hex_hashes(parent_text, parent_ends)), axis=1)
        calls = call_columns(HexIds(trace_text, span_text), id_hashes, starts, at + durations, inp, out,
                             ([value_pool[v - 1] if v else "" for v in rid_used.tolist()], rid_of),
                             (tenants, tenant_of), (providers, provider_of), (services, resource_of),
                             ([r.get("service.instance.id", "") for r in redacted], resource_of),  # (after redaction)
                             (scopes, scope_of))
        return Prepared(n, columns, status, cost, savings, key_pool, value_pool, slot_keys, slot_values, lengths,
                        calls, resource_counts, other, by_row)

    def finish(self, prepared: Prepared) -> Columnar:
        """:meth:`file` then :meth:`rows`."""
        return self.rows(prepared, self.file(prepared))

    def file(self, prepared: Prepared) -> dict[int, tuple[str, str, str]]:
        """File the request's spans in call identity's window (``CallIdentity.file``: the later spans of a call
        seen before are duplicates, as in the chain) and count what redaction masked. Returns, for each duplicate,
        its row -> (the carrier's span id, its trace id, the rule)."""
        marks = self._calls.file(prepared.calls) if self._calls is not None else {}
        if prepared.resource_counts:
            self._redact.count(prepared.resource_counts)
        return marks

    def rows(self, prepared: Prepared, marks: dict[int, tuple[str, str, str]]) -> Columnar:
        """The request's rows, its duplicates (``marks``, from :meth:`file`) marked as the chain marks them."""
        n = prepared.n
        status, cost, savings = prepared.status, prepared.cost, prepared.savings
        valid = status == _PRICED
        keys, values, lengths = prepared.slot_keys, prepared.slot_values, prepared.lengths
        key_pool, value_pool = prepared.key_pool, prepared.value_pool
        if marks:
            status = status.copy()
            marked = np.fromiter(marks, np.int64, len(marks))
            status[marked] = _DUPLICATE
            valid = valid & (status != _DUPLICATE)
            # each marked span's three attributes after its own (the chain adds them to its dict last)
            key_pool = key_pool + list(_MARKS)
            extra = len(value_pool)
            value_pool = value_pool + [v for row in marks for v in marks[row]]
            ends = np.cumsum(lengths)
            at = np.repeat(ends[marked], 3)
            keys = np.insert(keys, at, np.tile(np.arange(len(key_pool) - 3, len(key_pool)), len(marked)))
            values = np.insert(values, at, np.arange(extra, extra + 3 * len(marked)))
            lengths = lengths.copy()
            lengths[marked] += 3
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(lengths, out=offsets[1:])
        columns = prepared.columns
        table = {name: columns[name] for name in ("timestamp", *STRING_COLUMNS[:-1]) if name in columns}
        table["pricing_status"] = dictionary_column(list(_STATUSES), status)
        table.update({name: columns[name] for name in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                        "cache_write_tokens", "reasoning_tokens")})
        table["cost_usd"] = _decimal(cost, valid)
        table["reported_cost_usd"] = columns["reported_cost_usd"]
        table["cache_savings_usd"] = _decimal(savings, valid)
        table["duration_ns"] = columns["duration_ns"]
        table["status_code"] = columns["status_code"]
        table["resource_attributes"] = columns["resource_attributes"]
        table["attributes"] = pa.MapArray.from_arrays(pa.array(offsets), dictionary_column(key_pool, keys),
                                                      _strings_of(value_pool, values), type=_MAP_TYPE)
        return Columnar(SpanTable(pa.table(table), prepared.codes), prepared.other, prepared.calls.ids)
