"""SpanRecordV1's ``attributes`` field written from a request's attribute columns, not from each record's dict.

Why: upb encodes a ``map<string, string>`` entry by entry from the Python dict, ~3 us of the ~6.5 us a
record costs to encode with the benchmark's 15 attributes. The wire scan already holds the request's
attributes as columns (:class:`~llm_cost_tracker.types.AttributeColumns`: each distinct key and value
once, and per attribute the ids of its key and value), so the field's bytes can be written from those in
compiled code: the distinct strings are encoded to UTF-8 once per request (one ``encode`` of them all
joined), and one loop writes every entry. ~1.1 us per record in all (benchmarks/kafka_encode.py): the loop
~0.4, finding each record's row ~0.25, the UTF-8 pools ~0.25, cutting each record's bytes ~0.25.

The bytes are those protobuf writes for the map, in the dict's order (upb writes its own hash order; map
order is unspecified, and protobuf and ClickHouse's ``ProtobufList`` reader take any): per entry the
``attributes`` tag, the entry's length, then key (field 1) and value (field 2), each tag, length and UTF-8
bytes, both always written as upb does. Only records the columns still describe are written this way
(:func:`~llm_cost_tracker.storage.rows.described_rows`: the dict they were decoded with, no key added, none
repeated on the wire: ClickHouse would store a key written twice twice, where the dict holds its last value
once); the others get ``None`` and keep upb's encoding of their dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llm_cost_tracker.compiled import compiled
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordV1
from llm_cost_tracker.storage.rows import described_rows
from llm_cost_tracker.types import AttributeColumns, SpanRecord

__all__ = ["ATTRIBUTES_TAG", "STATE", "attribute_fields", "warm_up"]

log = get_logger("kafka_attributes")


class _State:
    error = ""
    """Why the compiled loop cannot be used ("" while it can)."""


STATE = _State()
ATTRIBUTES_TAG = SpanRecordV1.DESCRIPTOR.fields_by_name["attributes"].number << 3 | 2
"""The ``attributes`` field's tag byte (field 10, length-delimited): 0x52."""


@compiled
def _write_entries(begins: np.ndarray, ends: np.ndarray, key_ids: np.ndarray, value_ids: np.ndarray,
                   key_bytes: np.ndarray, key_offsets: np.ndarray, value_bytes: np.ndarray,
                   value_offsets: np.ndarray, tag: int) -> tuple[np.ndarray, np.ndarray]:
    """The map entries of the slots ``begins[i]:ends[i]`` of each row ``i``, one after the other, and where
    each row's bytes end (``row_ends[0] = 0``).

    A plain loop for numba, the varints written inline. Positions, lengths and offsets (``uint64`` arrays) are
    unsigned: numba checks every signed index for a negative one, which made the byte copies 3x slower; and
    every constant is a ``uint64`` too (mixed with a signed integer, numba computes in float64)."""
    one, seven, low, high = np.uint64(1), np.uint64(7), np.uint64(0x7F), np.uint64(0x80)
    row_ends = np.zeros(len(begins) + 1, np.uint64)
    bodies = np.empty(int((ends - begins).sum()), np.uint64)  # each entry's length
    total = np.uint64(0)
    j = 0
    for i in range(len(begins)):  # the sizes first, to allocate once
        for s in range(begins[i], ends[i]):
            kl = key_offsets[key_ids[s] + 1] - key_offsets[key_ids[s]]
            vl = value_offsets[value_ids[s] + 1] - value_offsets[value_ids[s]]
            body = np.uint64(4) + kl + vl  # two tags, two one-byte lengths, key, value
            x = kl >> seven
            while x:
                body += one
                x >>= seven
            x = vl >> seven
            while x:
                body += one
                x >>= seven
            bodies[j] = body
            j += 1
            total += np.uint64(2) + body
            x = body >> seven
            while x:
                total += one
                x >>= seven
        row_ends[i + 1] = total
    out = np.empty(total, np.uint8)
    p = np.uint64(0)
    j = 0
    for i in range(len(begins)):
        for s in range(begins[i], ends[i]):
            out[p] = tag
            p += one
            x = bodies[j]
            j += 1
            while x >= high:
                out[p] = (x & low) | high
                p += one
                x >>= seven
            out[p] = x
            p += one
            out[p] = 0x0A  # key: field 1
            p += one
            start, stop = key_offsets[key_ids[s]], key_offsets[key_ids[s] + 1]
            x = stop - start
            while x >= high:
                out[p] = (x & low) | high
                p += one
                x >>= seven
            out[p] = x
            p += one
            while start < stop:  # not range(): its index is signed
                out[p] = key_bytes[start]
                p += one
                start += one
            out[p] = 0x12  # value: field 2
            p += one
            start, stop = value_offsets[value_ids[s]], value_offsets[value_ids[s] + 1]
            x = stop - start
            while x >= high:
                out[p] = (x & low) | high
                p += one
                x >>= seven
            out[p] = x
            p += one
            while start < stop:  # not range(): its index is signed
                out[p] = value_bytes[start]
                p += one
                start += one
    return out, row_ends


def _pool(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``strings`` as one UTF-8 buffer and the offsets of each (``offsets[i]:offsets[i + 1]``).

    One ``encode`` of them all: when that is as long as the text, every string is ASCII and its byte
    length is its length; otherwise each is measured encoded."""
    text = "".join(strings)
    data = text.encode()
    if len(data) == len(text):
        lengths = np.fromiter(map(len, strings), np.uint64, len(strings))
    else:
        lengths = np.fromiter(map(len, map(str.encode, strings)), np.uint64, len(strings))
    offsets = np.zeros(len(strings) + 1, np.uint64)
    np.cumsum(lengths, out=offsets[1:])
    return np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8), offsets


def attribute_fields(records: Sequence[SpanRecord], columns: AttributeColumns) -> list[bytes | None]:
    """Each record's ``attributes`` field bytes (the encoding of its whole map), or None for a record the
    ``columns`` do not describe (its map must be encoded from its dict).

    Never raises: a failure here (a bug, numba failing to load) must not cost the request, whose dicts still
    encode. It turns the column path off for the process, logged once (:func:`_disable`)."""
    if STATE.error:
        return [None] * len(records)
    try:
        return _fields(records, columns)
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing: encode the dicts
        _disable(type(exc).__name__)  # the type only: the message of a failure on data could quote a value
        return [None] * len(records)


def _disable(reason: str) -> None:
    STATE.error = reason
    log.error("attribute columns unavailable to the Kafka encoding; upb encodes every map", error=reason)


def _fields(records: Sequence[SpanRecord], columns: AttributeColumns) -> list[bytes | None]:
    out: list[bytes | None] = [None] * len(records)
    group, row = described_rows([r.attributes for r in records], [columns])
    mine = np.flatnonzero(group == 0)
    if not len(mine):
        return out
    rows = row[mine]
    key_bytes, key_offsets = _pool(columns.keys)
    value_bytes, value_offsets = _pool(columns.values)
    data, ends = _write_entries(columns.begins[rows], columns.ends[rows], columns.key_ids, columns.value_ids,
                                key_bytes, key_offsets, value_bytes, value_offsets, ATTRIBUTES_TAG)
    blob = data.tobytes()
    offsets = ends.tolist()
    fields = list(map(blob.__getitem__, map(slice, offsets, offsets[1:])))
    if len(fields) == len(records):
        return fields  # type: ignore[return-value]
    for i, field in zip(mine.tolist(), fields, strict=True):
        out[i] = field
    return out


def warm_up() -> None:
    """Load (or compile) the loop now, not on the first request: ~0.2 s from numba's cache, ~3-5 s without.
    Run on a thread when the publisher starts (a request that comes sooner waits for it). A failure (no
    working LLVM, say) leaves every record on upb's encoding: logged, never raised."""
    one = np.zeros(1, np.int32)
    try:
        _write_entries(one, one + 1, one, one, np.zeros(1, np.uint8), np.arange(2, dtype=np.uint64),
                       np.zeros(1, np.uint8), np.arange(2, dtype=np.uint64), ATTRIBUTES_TAG)
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing: encode the dicts
        _disable(f"{type(exc).__name__}: {exc}")  # no request data here: the whole message helps
