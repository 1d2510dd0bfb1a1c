"""One pass over an Export request's wire bytes into flat arrays: the receiver's decoder without protobuf objects.

Why: ``otlp_decode`` reads a request through protobuf's Python API, which builds a wrapper object per
message and a string per field it is asked for: four objects per attribute, ~20 us of CPU per span, the
largest stage of the ingest path (issue 19, docs/performance.md). This module
walks the bytes once in compiled code (numba) and returns where each span, attribute, key and value
lies (one walk into tables sized from the request's length; a second only for a request that does
not fit them); :func:`number` numbers the distinct keys, values and names, and ``otlp_records``
turns that into the same records with one string per distinct key and value.

What it must not do is accept a request protobuf would refuse, or read one differently. So:

* **The schema comes from the installed descriptors** (``ExportTraceServiceRequest`` and every message
  under it), not from hand-written field numbers: every field protobuf knows is checked the way upb
  checks it (UTF-8 of every string, in events, links and nested values too; lengths inside their
  message; the nesting limit), and a field it does not know is skipped as upb skips it.
* **Anything unusual declines** instead of guessing: a group, a varint over 10 bytes, a message
  nested deeper than :data:`MAX_DEPTH`, a singular message given twice (protobuf merges the two), a
  field number 0. The caller then runs the protobuf decoder, which gives the answer (often a
  ``DecodeError``). Real exporters never send these, so declining costs nothing in practice.
* **Values that are not plain scalars** (arrays, kvlists, bytes) are located, not rendered: the caller
  parses just that ``AnyValue`` with protobuf and renders it as ``otlp_decode`` does.

The walk is table-driven: each message type is a row of per-field (wire kind, sub-message, action)
codes, so the loop is one explicit stack and a switch, with no recursion for numba to compile.
The tests check it against protobuf on fuzzed requests (tests/fuzz/test_fuzz_scan.py), and the
numbering against plain Python dicts (tests/sources/test_otlp_numbering.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.sources.otlp_decode import DecodeLimits, check_counts

__all__ = ["HASH_SEED", "MAX_DEPTH", "PROBES_PER_ITEM", "Numbering", "WireScan", "number", "scan_request", "words_of"]

MAX_DEPTH = 64
"""Messages nested deeper decline (upb refuses past 100; the caller's protobuf parse decides)."""

# Wire kinds of a known field (0: not a field of this message, skipped like upb's unknown fields).
_VARINT, _I64, _I32, _STRING, _BYTES, _MESSAGE = 1, 2, 3, 4, 5, 6
_WIRE_TYPE = np.array([-1, 0, 1, 5, 2, 2, 2], dtype=np.int64)
"""The wire type each kind arrives as; another wire type makes the field unknown to upb (skipped)."""

# Actions: what the walk records when it meets a field (_NONE: nothing; the message is still walked).
(_NONE, _RESOURCE_SPANS, _RESOURCE, _SCOPE_SPANS, _SPAN, _RESOURCE_ATTR, _SPAN_ATTR, _ATTR_VALUE, _SCOPE_NAME,
 _TRACE_ID, _SPAN_ID, _PARENT_ID, _NAME, _START, _END, _STATUS_CODE, _KEY, _VALUE_STRING, _VALUE_BOOL,
 _VALUE_INT, _VALUE_DOUBLE, _VALUE_OTHER) = range(22)

# Value kinds of an attribute (column ``A_KIND``).
EMPTY, STRING, BOOL, INT, DOUBLE, OTHER = 0, 1, 2, 3, 4, 5

_RESOURCE_ATTR_TYPE = "KeyValue@resource"
_SPAN_ATTR_TYPE = "KeyValue@span"
_ATTR_VALUE_TYPE = "AnyValue@attribute"
"""Pseudo types: KeyValue and AnyValue where they are a resource's or span's own attributes (recorded),
as distinct from the same messages inside events, links, scopes and nested values (only checked)."""


def _kind(field: FieldDescriptor) -> int:
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        return _MESSAGE
    if t == FieldDescriptor.TYPE_STRING:
        return _STRING
    if t == FieldDescriptor.TYPE_BYTES:
        return _BYTES
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64):
        return _I64
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32):
        return _I32
    if t == FieldDescriptor.TYPE_GROUP:  # not in OTLP; a schema with one is not walked
        raise ValueError(f"group field {field.full_name}")
    return _VARINT


_ACTIONS = {  # (message, field) -> action; the message names are the descriptors' (or the pseudo types)
    ("ExportTraceServiceRequest", "resource_spans"): _RESOURCE_SPANS,
    ("ResourceSpans", "resource"): _RESOURCE,
    ("ResourceSpans", "scope_spans"): _SCOPE_SPANS,
    ("Resource", "attributes"): _RESOURCE_ATTR,
    ("ScopeSpans", "spans"): _SPAN,
    ("InstrumentationScope", "name"): _SCOPE_NAME,
    ("Span", "trace_id"): _TRACE_ID,
    ("Span", "span_id"): _SPAN_ID,
    ("Span", "parent_span_id"): _PARENT_ID,
    ("Span", "name"): _NAME,
    ("Span", "start_time_unix_nano"): _START,
    ("Span", "end_time_unix_nano"): _END,
    ("Span", "attributes"): _SPAN_ATTR,
    ("Status", "code"): _STATUS_CODE,
    (_RESOURCE_ATTR_TYPE, "key"): _KEY,
    (_SPAN_ATTR_TYPE, "key"): _KEY,
    (_RESOURCE_ATTR_TYPE, "value"): _ATTR_VALUE,
    (_SPAN_ATTR_TYPE, "value"): _ATTR_VALUE,
    (_ATTR_VALUE_TYPE, "string_value"): _VALUE_STRING,
    (_ATTR_VALUE_TYPE, "bool_value"): _VALUE_BOOL,
    (_ATTR_VALUE_TYPE, "int_value"): _VALUE_INT,
    (_ATTR_VALUE_TYPE, "double_value"): _VALUE_DOUBLE,
}
_PSEUDO = {("Resource", "attributes"): _RESOURCE_ATTR_TYPE, ("Span", "attributes"): _SPAN_ATTR_TYPE,
           (_RESOURCE_ATTR_TYPE, "value"): _ATTR_VALUE_TYPE, (_SPAN_ATTR_TYPE, "value"): _ATTR_VALUE_TYPE}
"""Fields whose messages are walked as a pseudo type (their own row of actions)."""


@dataclass(frozen=True, slots=True)
class _Schema:
    kind: np.ndarray  # [type, field number] -> wire kind (0: unknown)
    sub: np.ndarray  # [type, field number] -> type of the message field
    action: np.ndarray  # [type, field number] -> action
    repeated: np.ndarray  # [type, field number] -> 1 when repeated (a singular message given twice declines)


def _schema() -> _Schema:
    root: Descriptor = ExportTraceServiceRequest.DESCRIPTOR
    names: list[str] = []
    descriptors: dict[str, Descriptor] = {}
    todo: list[tuple[str, Descriptor]] = [(root.name, root)]
    while todo:
        name, descriptor = todo.pop(0)
        if name in descriptors:
            continue
        names.append(name)
        descriptors[name] = descriptor
        for field in descriptor.fields:
            if field.message_type is not None:
                todo.append((_PSEUDO.get((name, field.name), field.message_type.name), field.message_type))
    top = max(f.number for d in descriptors.values() for f in d.fields) + 1
    shape = (len(names), top)
    kind, sub, action, repeated = (np.zeros(shape, np.int64) for _ in range(4))
    for t, name in enumerate(names):
        for field in descriptors[name].fields:
            kind[t, field.number] = _kind(field)
            repeated[t, field.number] = int(field.is_repeated)
            action[t, field.number] = _ACTIONS.get((name, field.name), _VALUE_OTHER if name == _ATTR_VALUE_TYPE else _NONE)
            if field.message_type is not None:
                sub[t, field.number] = names.index(_PSEUDO.get((name, field.name), field.message_type.name))
    return _Schema(kind, sub, action, repeated)


_SCHEMA = _schema()


# Columns of the span table (int64; the times are a uint64's bits).
(S_RESOURCE, S_SCOPE, S_TRACE_OFF, S_TRACE_LEN, S_SPAN_OFF, S_SPAN_LEN, S_PARENT_OFF, S_PARENT_LEN, S_NAME_OFF,
 S_NAME_LEN, S_START, S_END, S_STATUS, S_ATTR_BEGIN, S_ATTR_END) = range(15)
# Columns of the attribute table: the key's bytes, the value's kind, a string value's bytes, a number
# (int, bool, or a double's bits), and the whole AnyValue's bytes (parsed by protobuf when kind is OTHER).
A_KEY_OFF, A_KEY_LEN, A_KIND, A_VALUE_OFF, A_VALUE_LEN, A_NUMBER, A_ANY_OFF, A_ANY_LEN = range(8)
# Columns of the resource table (its attributes' rows) and of the scope table.
R_ATTR_BEGIN, R_ATTR_END = range(2)
C_RESOURCE, C_NAME_OFF, C_NAME_LEN = range(3)

assert (_SPAN_ID, _PARENT_ID, _NAME) == (_TRACE_ID + 1, _TRACE_ID + 2, _TRACE_ID + 3)
assert (S_SPAN_OFF, S_PARENT_OFF, S_NAME_OFF) == (S_TRACE_OFF + 2, S_TRACE_OFF + 4, S_TRACE_OFF + 6)
"""The walk stores a span's byte ranges by arithmetic on these (see ``_walk``)."""

OK, MALFORMED, UNUSUAL, FULL = 0, 1, 2, 3
"""A walk's status: accepted, or declined because protobuf would refuse it (or might), or because it is
unusual (merged messages, deep nesting); a declined request goes to the protobuf decoder. ``FULL``: a
filling walk ran out of table rows (the tables are sized from the request's length; see ``scan_request``)."""


@compiled
def _walk(buf: np.ndarray, kind: np.ndarray, sub: np.ndarray, action: np.ndarray, repeated: np.ndarray,
          wire: np.ndarray, fill: bool, spans: np.ndarray, attrs: np.ndarray, resources: np.ndarray,
          scopes: np.ndarray, counts: np.ndarray) -> int:  # pragma: no cover - compiled (tests run py_func too)
    """Walk ``buf`` as an ExportTraceServiceRequest; count (``fill`` false) or fill the tables. Returns a status
    (``FULL`` when filling and a table has no row left: the walk stops there, ``counts`` unset)."""
    n = buf.shape[0]
    top = kind.shape[1]
    ends = np.empty(MAX_DEPTH + 1, np.int64)
    types = np.empty(MAX_DEPTH + 1, np.int64)
    acts = np.empty(MAX_DEPTH + 1, np.int64)
    seen = np.empty(MAX_DEPTH + 1, np.int64)
    depth = 0
    ends[0] = n
    types[0] = 0
    acts[0] = 0
    seen[0] = 0
    pos = 0
    n_spans = n_attrs = n_resources = n_scopes = 0
    resource = scope = span = attr = -1
    while True:
        end = ends[depth]
        if pos == end:
            if depth == 0:
                break
            act = acts[depth]
            if fill:
                if act == _SPAN:
                    spans[span, S_ATTR_END] = n_attrs
                elif act == _RESOURCE:
                    resources[resource, R_ATTR_END] = n_attrs
            depth -= 1
            continue
        # the tag: a varint of at most 5 bytes, at most 2**32 - 1
        tag = 0
        shift = 0
        while True:
            if pos >= end or shift > 28:
                return MALFORMED
            byte = buf[pos]
            pos += 1
            tag |= (int(byte) & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if tag > 0xFFFFFFFF:
            return MALFORMED  # upb reads a tag as a uint32: a fifth byte over 0x0F is an error, not a field
        field = tag >> 3
        wt = tag & 7
        if field == 0:
            return MALFORMED
        t = types[depth]
        k = kind[t, field] if field < top else 0
        if k != 0 and wire[k] != wt:
            k = 0  # the wrong wire type: an unknown field to upb
        value = np.uint64(0)
        length = 0
        if wt == 0 or wt == 2:  # a varint: the value, or the length of what follows
            shift = 0
            while True:
                if pos >= end or shift > 63:
                    return MALFORMED
                byte = buf[pos]
                pos += 1
                value |= (np.uint64(byte) & np.uint64(0x7F)) << np.uint64(shift)
                shift += 7
                if byte < 0x80:
                    break
            if wt == 2:
                if value > np.uint64(end - pos):
                    return MALFORMED
                length = int(np.int64(value))
        elif wt == 1:
            if pos + 8 > end:
                return MALFORMED
            for b in range(8):
                value |= np.uint64(buf[pos + b]) << np.uint64(8 * b)
            pos += 8
        elif wt == 5:
            if pos + 4 > end:
                return MALFORMED
            pos += 4
        elif wt == 3 or wt == 4:
            return UNUSUAL  # groups: not in OTLP
        else:
            return MALFORMED
        if k == 0:
            pos += length
            continue
        a = action[t, field]
        if k == _MESSAGE:  # descend
            if repeated[t, field] == 0:
                bit = np.int64(1) << field
                if seen[depth] & bit:
                    return UNUSUAL  # a singular message twice: protobuf merges them
                seen[depth] |= bit
            if depth == MAX_DEPTH:
                return UNUSUAL
            if a == _RESOURCE_SPANS:
                resource = n_resources
                n_resources += 1
                if fill:
                    if resource >= resources.shape[0]:
                        return FULL
                    resources[resource, R_ATTR_BEGIN] = n_attrs
                    resources[resource, R_ATTR_END] = n_attrs
            elif a == _RESOURCE:
                if fill:
                    resources[resource, R_ATTR_BEGIN] = n_attrs
            elif a == _SCOPE_SPANS:
                scope = n_scopes
                n_scopes += 1
                if fill:
                    if scope >= scopes.shape[0]:
                        return FULL
                    scopes[scope, C_RESOURCE] = resource
                    scopes[scope, C_NAME_OFF] = 0
                    scopes[scope, C_NAME_LEN] = 0
            elif a == _SPAN:
                span = n_spans
                n_spans += 1
                if fill:
                    if span >= spans.shape[0]:
                        return FULL
                    spans[span, :] = 0
                    spans[span, S_RESOURCE] = resource
                    spans[span, S_SCOPE] = scope
                    spans[span, S_ATTR_BEGIN] = n_attrs
                    spans[span, S_ATTR_END] = n_attrs
            elif a == _RESOURCE_ATTR or a == _SPAN_ATTR:
                attr = n_attrs
                n_attrs += 1
                if fill:
                    if attr >= attrs.shape[0]:
                        return FULL
                    attrs[attr, :] = 0
            elif a == _ATTR_VALUE:  # the whole AnyValue, for protobuf when it is not a plain scalar
                if fill:
                    attrs[attr, A_ANY_OFF] = pos
                    attrs[attr, A_ANY_LEN] = length
            elif a == _VALUE_OTHER:  # an array or kvlist value (walked below to check it)
                if fill:
                    attrs[attr, A_KIND] = OTHER
            depth += 1
            ends[depth] = pos + length
            types[depth] = sub[t, field]
            acts[depth] = a
            seen[depth] = 0
            continue
        if k == _STRING:  # UTF-8 as upb checks it (no overlongs, surrogates, or past U+10FFFF)
            i = pos
            stop = pos + length
            while i < stop:
                # ASCII (nearly every key and value): eight bytes per step while no high bit is set
                if i + 8 <= stop and (buf[i] | buf[i + 1] | buf[i + 2] | buf[i + 3] | buf[i + 4] | buf[i + 5]
                                      | buf[i + 6] | buf[i + 7]) < 0x80:
                    i += 8
                    continue
                c = buf[i]
                if c < 0x80:
                    i += 1
                    continue
                if 0xC2 <= c <= 0xDF:
                    need = 1
                elif 0xE0 <= c <= 0xEF:
                    need = 2
                elif 0xF0 <= c <= 0xF4:
                    need = 3
                else:
                    return MALFORMED
                if i + need >= stop:
                    return MALFORMED
                c1 = buf[i + 1]
                if c1 < 0x80 or c1 > 0xBF:
                    return MALFORMED
                if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F) or (c == 0xF0 and c1 < 0x90) \
                        or (c == 0xF4 and c1 > 0x8F):
                    return MALFORMED
                for j in range(2, need + 1):
                    cj = buf[i + j]
                    if cj < 0x80 or cj > 0xBF:
                        return MALFORMED
                i += need + 1
        if fill and a != 0:
            if a == _SCOPE_NAME:
                scopes[scope, C_NAME_OFF] = pos
                scopes[scope, C_NAME_LEN] = length
            elif _TRACE_ID <= a <= _NAME:  # a span's four byte ranges, in (offset, length) column pairs
                column = S_TRACE_OFF + 2 * (a - _TRACE_ID)
                spans[span, column] = pos
                spans[span, column + 1] = length
            elif a == _START:
                spans[span, S_START] = np.int64(value)
            elif a == _END:
                spans[span, S_END] = np.int64(value)
            elif a == _STATUS_CODE:  # an int32 enum, so its low 32 bits (0-2 are the codes; others read as 0)
                spans[span, S_STATUS] = np.int64(value & np.uint64(0xFFFFFFFF))
            elif a == _KEY:
                attrs[attr, A_KEY_OFF] = pos
                attrs[attr, A_KEY_LEN] = length
            elif a == _VALUE_STRING:
                attrs[attr, A_KIND] = STRING
                attrs[attr, A_VALUE_OFF] = pos
                attrs[attr, A_VALUE_LEN] = length
            elif a == _VALUE_BOOL:
                attrs[attr, A_KIND] = BOOL
                attrs[attr, A_NUMBER] = 1 if value != 0 else 0
            elif a == _VALUE_INT:
                attrs[attr, A_KIND] = INT
                attrs[attr, A_NUMBER] = np.int64(value)
            elif a == _VALUE_DOUBLE:
                attrs[attr, A_KIND] = DOUBLE
                attrs[attr, A_NUMBER] = np.int64(value)
            elif a == _VALUE_OTHER:  # bytes, or a string table's index
                attrs[attr, A_KIND] = OTHER
        pos += length
    counts[0] = n_spans
    counts[1] = n_attrs
    counts[2] = n_resources
    counts[3] = n_scopes
    return OK


# Rows of ``Numbering.firsts`` (and of its counts): what ``_number`` numbers, each from 0.
N_KEYS, N_STRINGS, N_INTS, N_DOUBLES, N_OTHERS, N_NAMES = range(6)
_FIXED = -1
"""A value numbered without the table: an empty one (0), a boolean (1 true, 2 false), an array the
records never show (0)."""
_FIXED_VALUES = 3
"""Value numbers before the strings' (``""``, ``"true"``, ``"false"``)."""


@compiled
def _number(buf: np.ndarray, words: np.ndarray, attrs: np.ndarray, needed: np.ndarray, spans: np.ndarray,
            max_len: int, key_ids: np.ndarray, value_ids: np.ndarray, name_ids: np.ndarray, firsts: np.ndarray,
            counts: np.ndarray, probes_per_item: int, seed: int) -> bool:  # pragma: no cover - compiled (tests run py_func too)
    """Number the distinct keys, values and span names of a request, in order of first sight.

    Three passes over one hash table: the attributes' keys (``key_ids``), their values (``value_ids``:
    strings, ints, doubles and AnyValues each numbered from 0, then shifted to follow one another after
    the ``_FIXED_VALUES``, so that equal renderings of one kind share a number), the spans' names
    (``name_ids``). ``firsts[r, j]`` is the item that first showed
    number j of row r (``N_KEYS`` ..), ``counts[r]`` how many numbers row r gave. Byte strings longer
    than ``max_len`` get a number of their own without hashing (long values are prompts: rarely
    repeated), except AnyValues (protobuf renders each distinct one).

    ``words`` is ``buf`` read as little-endian uint64 at every byte offset (``words[i]`` is bytes i..i+7):
    a string is hashed and compared eight bytes per load.

    ``seed`` (:data:`HASH_SEED`, secret, drawn per process) starts every hash: without it the hash is a
    fixed function a client could run backwards, and send strings that all land on one slot.

    Returns False, numbering unfinished, when a pass steps past ``probes_per_item`` slots per item (plus a
    few): the seed makes collisions a matter of chance for a client that cannot see it, but a multiply and
    xorshift hash is no keyed PRF (differential attacks found seed-independent collisions in murmur3), so
    the budget is what bounds the probing; such a request is declined and decoded by protobuf instead,
    whose cost is linear. Honest requests take ~1-2 steps per item (the table is at most half full)."""
    n_attrs = attrs.shape[0]
    n_spans = spans.shape[0]
    most = max(n_attrs, n_spans)
    size = 16
    while size < 2 * most:
        size *= 2
    table = np.empty(size, np.int64)
    mask = size - 1
    last = words.shape[0] - 1
    mul = np.uint64(0x9E3779B97F4A7C15)
    key = np.uint64(seed)
    offs = np.empty(most, np.int64)  # the current pass's items: bytes (offset, length), or a number (length -1)
    lens = np.empty(most, np.int64)
    nums = np.empty(most, np.int64)
    rows = np.empty(most, np.int64)  # the row of firsts numbering the item (_FIXED: numbered already)
    counts[:] = 0
    for step in range(3):
        count = n_spans if step == 2 else n_attrs
        ids = key_ids if step == 0 else value_ids if step == 1 else name_ids
        table[:] = -1
        budget = probes_per_item * count + 64
        if budget < 0:  # no budget at all (tests ask for this: the decline path without crafted strings)
            return False
        for i in range(count):
            limit = max_len
            off = 0
            length = -1
            if step == 0:
                row = N_KEYS
                off = attrs[i, A_KEY_OFF]
                length = attrs[i, A_KEY_LEN]
            elif step == 2:
                row = N_NAMES
                off = spans[i, S_NAME_OFF]
                length = spans[i, S_NAME_LEN]
            else:
                kind = attrs[i, A_KIND]
                row = _FIXED
                if kind == STRING:
                    row = N_STRINGS
                    off = attrs[i, A_VALUE_OFF]
                    length = attrs[i, A_VALUE_LEN]
                elif kind == INT:
                    row = N_INTS
                    nums[i] = attrs[i, A_NUMBER]
                elif kind == DOUBLE:
                    row = N_DOUBLES
                    nums[i] = attrs[i, A_NUMBER]
                elif kind == OTHER and needed[i]:
                    row = N_OTHERS
                    off = attrs[i, A_ANY_OFF]
                    length = attrs[i, A_ANY_LEN]
                    limit = length
                elif kind == BOOL:
                    ids[i] = 1 if attrs[i, A_NUMBER] != 0 else 2
                else:  # empty, or an AnyValue of a span the records leave out
                    ids[i] = 0
            rows[i] = row
            if row == _FIXED:
                continue
            lens[i] = length
            if length > limit:
                ids[i] = counts[row]
                firsts[row, counts[row]] = i
                counts[row] += 1
                continue
            if length < 0:  # a number (an int, a double's bits)
                h = (np.uint64(nums[i]) ^ np.uint64(row) ^ key) * mul
            else:
                offs[i] = off
                h = (np.uint64(length + (row << 32)) ^ key) * mul
                b = 0
                while b + 8 <= length:
                    h = (h ^ words[off + b]) * mul
                    h ^= h >> np.uint64(32)
                    b += 8
                r = length - b
                if r > 0:  # the last 1-7 bytes, in the low bits of one load
                    if length >= 8:
                        w = words[off + length - 8] >> np.uint64(8 * (8 - r))
                    else:
                        at = min(off, last)
                        w = (words[at] >> np.uint64(8 * (off - at))) & ((np.uint64(1) << np.uint64(8 * r))
                                                                        - np.uint64(1))
                    h = (h ^ w) * mul
                    h ^= h >> np.uint64(32)
            h ^= h >> np.uint64(33)  # murmur3's finalizer: every bit of h reaches the low bits the mask keeps
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(33)
            slot = np.int64(h & np.uint64(mask))
            while True:
                j = table[slot]
                if j < 0:
                    table[slot] = i
                    ids[i] = counts[row]
                    firsts[row, counts[row]] = i
                    counts[row] += 1
                    break
                if rows[j] == row and lens[j] == length:
                    if length < 0:
                        same = nums[j] == nums[i]
                    else:
                        o2 = offs[j]
                        same = True
                        b = 0
                        while b + 8 <= length:
                            if words[off + b] != words[o2 + b]:
                                same = False
                                break
                            b += 8
                        if same:
                            for c in range(b, length):
                                if buf[off + c] != buf[o2 + c]:
                                    same = False
                                    break
                    if same:
                        ids[i] = ids[j]
                        break
                slot = (slot + 1) & mask
                budget -= 1
                if budget < 0:
                    return False
        if step == 1:  # each kind's numbers after the kinds before it
            base = np.empty(N_OTHERS + 1, np.int64)
            base[N_STRINGS] = _FIXED_VALUES
            for row in range(N_INTS, N_OTHERS + 1):
                base[row] = base[row - 1] + counts[row - 1]
            for i in range(n_attrs):
                if rows[i] != _FIXED:
                    value_ids[i] += base[rows[i]]
    return True


@dataclass(frozen=True, slots=True)
class Numbering:
    """What ``_number`` gave for a request (see there): ids per attribute (and per span for names), and
    for each row of ``firsts`` the items that first showed each number."""

    key_ids: np.ndarray
    value_ids: np.ndarray
    name_ids: np.ndarray
    firsts: list[np.ndarray]


@dataclass(frozen=True, slots=True)
class WireScan:
    """Where everything of one request lies in its bytes (tables of int64, columns named above)."""

    buffer: np.ndarray
    spans: np.ndarray
    attributes: np.ndarray
    resources: np.ndarray
    scopes: np.ndarray

    @property
    def span_count(self) -> int:
        return int(self.spans.shape[0])

    @property
    def attribute_count(self) -> int:
        return int(self.attributes.shape[0])


_SPAN_BYTES = 30
"""The fewest bytes a span the receiver accepts takes on the wire (its 16- and 8-byte ids with their tags
and lengths, and its own tag and length): a request of accepted spans fits tables sized by it."""
_ATTRIBUTE_BYTES = 16
"""Bytes per attribute the first tables are sized for (the workload's average is ~41; a request of
smaller attributes is counted first, as every request used to be)."""


def scan_request(payload: bytes, limits: DecodeLimits) -> WireScan | None:
    """The tables of ``payload``, or None when the protobuf decoder must decide (see the module docstring).

    Raises :class:`LimitExceeded` when the request holds more spans or attributes than ``limits`` allow.
    One walk fills tables sized from the request's length (at most the limits' rows: memory in
    proportion to the bytes received, and the pages of unused rows are never touched); a request that
    does not fit them, or is over the limits, is counted by a walk before any table of its counts is
    allocated (so a hostile request costs no more memory), then filled by a second one."""
    buf = np.frombuffer(payload, dtype=np.uint8)
    s = _SCHEMA
    counts = np.zeros(4, np.int64)
    n = len(payload)
    spans = np.empty((min(n // _SPAN_BYTES + 8, limits.max_spans), 15), np.int64)
    attrs = np.empty((min(n // _ATTRIBUTE_BYTES + 8, limits.max_request_attributes), 8), np.int64)
    resources = np.empty((n // _SPAN_BYTES + 8, 2), np.int64)  # a resource's scope spans hold a span or are rare
    scopes = np.empty((n // _SPAN_BYTES + 8, 3), np.int64)
    status = _walk(buf, s.kind, s.sub, s.action, s.repeated, _WIRE_TYPE, True, spans, attrs, resources, scopes, counts)
    if status == OK:
        return WireScan(buf, spans[:counts[0]], attrs[:counts[1]], resources[:counts[2]], scopes[:counts[3]])
    if status != FULL:
        return None
    del spans, attrs, resources, scopes
    empty = np.zeros((0, 15), np.int64)
    if _walk(buf, s.kind, s.sub, s.action, s.repeated, _WIRE_TYPE, False, empty, empty, empty, empty, counts) != OK:
        return None
    check_counts(int(counts[0]), int(counts[1]), limits)
    spans = np.empty((counts[0], 15), np.int64)
    attrs = np.empty((counts[1], 8), np.int64)
    resources = np.empty((counts[2], 2), np.int64)
    scopes = np.empty((counts[3], 3), np.int64)
    status = _walk(buf, s.kind, s.sub, s.action, s.repeated, _WIRE_TYPE, True, spans, attrs, resources, scopes, counts)
    if status != OK:  # pragma: no cover - the first walk saw the same bytes
        return None
    return WireScan(buf, spans, attrs, resources, scopes)


def words_of(payload: bytes) -> np.ndarray:
    """``payload`` as little-endian uint64 at every byte offset (a read-only view; padded when under 8 bytes)."""
    if len(payload) < 8:
        payload = payload + bytes(8)
    return np.ndarray((len(payload) - 7,), np.uint64, buffer=payload, strides=(1,))


PROBES_PER_ITEM = 32
"""Hash-table steps a numbering pass may take per item before it declines the request (``_number``)."""

HASH_SEED = int.from_bytes(os.urandom(8), "little") >> 1
"""The numbering hash's secret seed, drawn once per process (63 bits: numba passes it as a non-negative int64,
which ``np.uint64`` takes in the compiled loop and in its Python twin alike). The ids a
numbering gives do not depend on it (they follow first sight), only which strings share a slot."""


def number(scan: WireScan, payload: bytes, needed: np.ndarray, max_len: int = 128,
           probes_per_item: int = PROBES_PER_ITEM, seed: int = HASH_SEED) -> Numbering | None:
    """The numbering of ``scan``'s keys, values and span names (``_number``); ``needed`` says which
    attributes' AnyValues are numbered (the others get the empty value's number). None when a pass took
    more than ``probes_per_item`` steps per item (strings made to collide): decode the request with protobuf.
    Tests give their own ``seed`` to build collisions."""
    n_attrs, n_spans = scan.attribute_count, scan.span_count
    key_ids, value_ids = np.empty(n_attrs, np.int64), np.empty(n_attrs, np.int64)
    name_ids = np.empty(n_spans, np.int64)
    firsts = np.empty((N_NAMES + 1, max(n_attrs, n_spans)), np.int64)
    counts = np.empty(N_NAMES + 1, np.int64)
    if not _number(scan.buffer, words_of(payload), scan.attributes, needed, scan.spans, max_len, key_ids, value_ids,
                   name_ids, firsts, counts, probes_per_item, seed):
        return None
    return Numbering(key_ids, value_ids, name_ids, [firsts[r, :c] for r, c in enumerate(counts.tolist())])
