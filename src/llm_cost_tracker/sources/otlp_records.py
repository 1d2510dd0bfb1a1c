"""A request's wire tables (``otlp_scan``) -> the records ``otlp_decode.decode_spans`` would give.

The result is the reference decoder's, record for record, rejection for rejection and message for
message (the fuzz tests compare the two on every request they make). What changes is the cost: one
Python string per *distinct* key and short value of the request instead of four objects per
attribute (ints and doubles too: each distinct one rendered once), and per span one dict built by
``dict(zip(...))`` over slices of two lists. The numbering is compiled (``otlp_scan.number``); the
lists are gathered from the pools by indexing arrays of objects, two C loops where
``map(pool.__getitem__, ids)`` calls Python per item.

A request that would be cut by a per-value limit (a key over ``max_key_bytes``, a value or name over
``max_value_bytes``, a span over ``max_attributes``) is left to the reference decoder: cutting is rare
and its rules (priority prefixes, counting) live there once. :func:`decode_scan` returns None then.
"""

from __future__ import annotations

from itertools import islice, repeat
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sources.otlp_decode import (
    MAX_START_NS,
    DecodedBatch,
    DecodeLimits,
    finish,
    render_value,
)
from llm_cost_tracker.sources.otlp_scan import (
    A_ANY_LEN,
    A_ANY_OFF,
    A_KEY_LEN,
    A_KEY_OFF,
    A_KIND,
    A_NUMBER,
    A_VALUE_LEN,
    A_VALUE_OFF,
    C_NAME_LEN,
    C_NAME_OFF,
    N_DOUBLES,
    N_INTS,
    N_KEYS,
    N_NAMES,
    N_OTHERS,
    N_STRINGS,
    OTHER,
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
    Numbering,
    WireScan,
    number,
    scan_request,
)
from llm_cost_tracker.types import AttributeColumns, SpanRecord

log = get_logger("otlp_records")

__all__ = ["SCAN", "ScanState", "decode_scan", "hex_ids", "object_array", "over_limits", "rendered_values", "utf8_strings",
           "warm_up", "wire_ints"]


def utf8_strings(payload: bytes, offsets: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The UTF-8 strings at ``offsets``/``lengths`` of ``payload`` (checked by the scan)."""
    return [payload[o:o + n].decode() for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)]


def object_array(items: list[Any]) -> np.ndarray:
    """``items`` as a 1-d array of objects (tuples stay items): ``object_array(pool)[ids].tolist()`` gives
    ``[pool[i] for i in ids]`` in two C loops (a third of ``map(pool.__getitem__, ids.tolist())``'s time)."""
    return np.fromiter(items, object, count=len(items))


def hex_ids(buf: np.ndarray, offsets: np.ndarray, width: int) -> list[str]:
    """``buf[o:o+width].hex()`` for every offset, from one hex string of the gathered bytes."""
    if not len(offsets):
        return []
    text = buf[offsets[:, None] + np.arange(width)].tobytes().hex()
    step = 2 * width
    return [text[i:i + step] for i in range(0, len(text), step)]


def _dicts(keys: list[str], values: list[str], begins: np.ndarray, ends: np.ndarray) -> list[dict[str, str]]:
    """``dict(zip(keys[b:e], values[b:e]))`` for each range ``[b, e)`` of ``begins``/``ends`` (in wire order:
    increasing, apart). One ``zip`` walks both lists once and an ``islice`` per span takes its pairs after
    skipping the rows between (a resource's, a rejected span's): no slice object and no two list copies per
    span, ~0.5 us per span less than slicing."""
    if not len(begins):
        return []
    previous = np.empty_like(ends)
    previous[0] = 0
    previous[1:] = ends[:-1]
    skips = begins - previous
    if int(skips.min()) < 0:  # not from the scan (it writes each span's rows after the one before's)
        ranges = list(map(slice, begins.tolist(), ends.tolist()))
        return list(map(dict, map(zip, map(keys.__getitem__, ranges), map(values.__getitem__, ranges))))
    pairs = zip(keys, values, strict=True)
    return list(map(dict, map(islice, repeat(pairs), skips.tolist(), (ends - previous).tolist())))


def over_limits(scan: WireScan, limits: DecodeLimits) -> bool:
    """Whether the reference decoder would cut something (keys, values, names, attributes per owner)."""
    a, s, r = scan.attributes, scan.spans, scan.resources
    if len(a) and (int(a[:, A_KEY_LEN].max()) > limits.max_key_bytes
                   or int(a[:, A_VALUE_LEN].max()) > limits.max_value_bytes):
        return True
    if len(s) and (int(s[:, S_NAME_LEN].max()) > limits.max_value_bytes
                   or int((s[:, S_ATTR_END] - s[:, S_ATTR_BEGIN]).max()) > limits.max_attributes):
        return True
    return bool(len(r) and int((r[:, R_ATTR_END] - r[:, R_ATTR_BEGIN]).max()) > limits.max_attributes)


def wire_ints(numbering: Numbering, scan: WireScan) -> tuple[int, np.ndarray]:
    """Where :func:`rendered_values` puts the request's distinct integer values (the value ids from the first one
    on), and those integers (``str`` of each is its text there): a reader of numbers need not parse them back."""
    return 3 + len(numbering.firsts[N_STRINGS]), scan.attributes[numbering.firsts[N_INTS], A_NUMBER]


def rendered_values(scan: WireScan, payload: bytes, numbering: Numbering, limits: DecodeLimits,
            batch: DecodedBatch) -> list[str] | None:
    """Every distinct value as the reference decoder renders it, in the order of ``numbering.value_ids``
    (None: leave the request to it). Values of spans the reference rejects are not rendered."""
    a = scan.attributes
    firsts = numbering.firsts
    pool = ["", "true", "false"]  # an empty AnyValue, the two booleans (then the strings, the ints: wire_ints)
    rows = firsts[N_STRINGS]
    pool += utf8_strings(payload, a[rows, A_VALUE_OFF], a[rows, A_VALUE_LEN])
    pool += map(str, a[firsts[N_INTS], A_NUMBER].tolist())
    pool += map(repr, a[firsts[N_DOUBLES], A_NUMBER].view(np.float64).tolist())
    rows = firsts[N_OTHERS]
    if len(rows):  # each distinct value parsed and rendered once (``finish_reasons: ["stop"]`` is on most spans)
        others = numbering.value_ids[a[:, A_KIND] == OTHER] - len(pool)  # those of rejected spans: below 0
        occurrences = np.bincount(others[others >= 0], minlength=len(rows))
        quarter = limits.max_value_bytes // 4
        for off, length, times in zip(a[rows, A_ANY_OFF].tolist(), a[rows, A_ANY_LEN].tolist(),
                                      occurrences.tolist(), strict=True):
            try:
                value = AnyValue.FromString(payload[off:off + length])
            except DecodeError:  # pragma: no cover - the scan checked every nested value
                return None
            cut_before = batch.truncated_attributes
            text = render_value(value, limits.max_depth, limits.max_value_bytes, batch)
            if len(text) > quarter and len(text.encode()) > limits.max_value_bytes:
                return None  # cut by the reference decoder
            batch.truncated_attributes += (batch.truncated_attributes - cut_before) * (times - 1)  # once per copy
            pool.append(text)
    return pool


def decode_scan(scan: WireScan, payload: bytes, limits: DecodeLimits) -> DecodedBatch | None:
    """The records of the request ``scan`` was made of, as ``decode_spans`` gives them; None when a per-value
    limit would cut something, or when the numbering declined strings made to collide in its table (the
    caller decodes with ``decode_spans`` then, in linear time). The request limits were checked by
    ``scan_request``."""
    if over_limits(scan, limits):
        return None
    batch = DecodedBatch()
    s, a, buf = scan.spans, scan.attributes, scan.buffer
    starts = s[:, S_START].view(np.uint64)
    valid_id = (s[:, S_TRACE_LEN] == 16) & (s[:, S_SPAN_LEN] == 8)
    accepted = valid_id & (starts <= MAX_START_NS)
    for position in np.flatnonzero(~accepted).tolist():  # in order: the first five become messages
        if not valid_id[position]:
            batch.reject("invalid_id", f"span #{position}: trace_id must be 16 bytes and span_id 8 bytes")
        else:
            batch.reject("invalid_timestamp", f"span #{position}: start time {int(starts[position])} ns is past 2262")
    needed = np.ones(len(a), bool)  # the reference renders no value of a span it rejects
    for begin, end in s[~accepted][:, [S_ATTR_BEGIN, S_ATTR_END]].tolist():
        needed[begin:end] = False
    numbering = number(scan, payload, needed)
    if numbering is None:  # strings made to collide in the numbering's table: protobuf decodes it, in linear time
        return None
    value_pool = rendered_values(scan, payload, numbering, limits, batch)
    if value_pool is None:
        return None
    firsts = numbering.firsts
    rows = firsts[N_KEYS]
    key_pool = utf8_strings(payload, a[rows, A_KEY_OFF], a[rows, A_KEY_LEN])
    key_ids, value_ids = numbering.key_ids, numbering.value_ids
    keys = object_array(key_pool)[key_ids].tolist()
    values = object_array(value_pool)[value_ids].tolist()
    tenant_key = limits.tenant_attribute
    resources = [dict(zip(keys[b:e], values[b:e], strict=True)) for b, e in scan.resources.tolist()]
    services = [r.get("service.name", "unknown_service") for r in resources]
    tenants = [r.get(tenant_key, "") for r in resources]
    scopes = [payload[o:o + n].decode()[:256] for o, n in
              zip(scan.scopes[:, C_NAME_OFF].tolist(), scan.scopes[:, C_NAME_LEN].tolist(), strict=True)]
    kept = np.flatnonzero(accepted)
    k = s[kept]
    trace_ids = hex_ids(buf, k[:, S_TRACE_OFF], 16)
    span_ids = hex_ids(buf, k[:, S_SPAN_OFF], 8)
    parents = [payload[o:o + n].hex() if n else ""
               for o, n in zip(k[:, S_PARENT_OFF].tolist(), k[:, S_PARENT_LEN].tolist(), strict=True)]
    rows = firsts[N_NAMES]
    name_pool = utf8_strings(payload, s[rows, S_NAME_OFF], s[rows, S_NAME_LEN])
    names = object_array(name_pool)[numbering.name_ids[kept]].tolist()
    start = starts[kept]
    end = k[:, S_END].view(np.uint64)
    durations = np.where(end >= start, end - start, 0).tolist()
    start_ns = start.tolist()
    status = k[:, S_STATUS]
    status = np.where((status >= 0) & (status <= 2), status, 0).tolist()
    spans_by_resource = k[:, S_RESOURCE].tolist()
    attributes = _dicts(keys, values, k[:, S_ATTR_BEGIN], k[:, S_ATTR_END])
    span_tenants = [tenants[r] or attrs.get(tenant_key, "")
                    for r, attrs in zip(spans_by_resource, attributes, strict=True)]
    records = list(map(SpanRecord, trace_ids, span_ids, parents, start_ns, durations,
                       map(services.__getitem__, spans_by_resource), names, status,
                       map(resources.__getitem__, spans_by_resource), attributes, span_tenants))
    if any(scopes):
        for record, scope in zip(records, k[:, S_SCOPE].tolist(), strict=True):
            if scopes[scope]:
                record.scope_name = scopes[scope]
    batch.records = records
    # int32 copies: the queue holds the columns until the batch is written, and a view into ``k`` would
    # hold all of its columns
    batch.columns = AttributeColumns(key_pool, value_pool, key_ids.astype(np.int32), value_ids.astype(np.int32),
                                     k[:, S_ATTR_BEGIN].astype(np.int32), k[:, S_ATTR_END].astype(np.int32),
                                     list(map(len, attributes)), attributes)
    return finish(batch, limits)



_WARM_UP = bytes.fromhex("0a2a122812260a1000000000000000000000000000000001120800000000000000014a080a016b12030a0176")
"""A request of one span with one attribute (``k: "v"``)."""


class ScanState:
    """Whether the wire scan can be used: false once its compiled code failed to load or compile
    (every request then goes through protobuf, as it did before the scan; the error is logged once)."""

    def __init__(self) -> None:
        self.error = ""

    @property
    def usable(self) -> bool:
        return not self.error


SCAN = ScanState()


def warm_up() -> None:
    """Load (or compile) the scan's compiled code now, not on the first Export: ~0.3 s from numba's cache,
    ~3 s without one. Run on a thread at start; an Export that comes sooner waits for it, then proceeds.
    A failure (no working LLVM, say) leaves the receiver on protobuf: logged, never raised."""
    try:
        scan = scan_request(_WARM_UP, DecodeLimits())
        if scan is None or decode_scan(scan, _WARM_UP, DecodeLimits()) is None:
            raise RuntimeError("the wire scan declined its own warm-up request")
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing: decode with protobuf
        SCAN.error = f"{type(exc).__name__}: {exc}"
        log.error("the wire scan is unavailable; protobuf decodes every request", error=SCAN.error)
