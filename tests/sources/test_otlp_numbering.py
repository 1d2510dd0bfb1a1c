"""``otlp_scan.number``: the compiled numbering of a request's keys, values and span names, against a
plain Python one (dicts of the items' bytes or numbers), on fuzzed tables and on requests.

The numbering hashes strings eight bytes per load, with the last 1-7 bytes read from a load that may
start before the string (or, for a short string near the end of the request, before it): these tests
put strings of every short length at every place, the end of the buffer included, and compare.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_cost_tracker.sources import otlp_scan
from llm_cost_tracker.sources.otlp_decode import DecodedBatch, DecodeLimits
from llm_cost_tracker.sources.otlp_records import decode_scan
from llm_cost_tracker.sources.otlp_scan import (
    A_ANY_LEN,
    A_ANY_OFF,
    A_KEY_LEN,
    A_KEY_OFF,
    A_KIND,
    A_NUMBER,
    A_VALUE_LEN,
    A_VALUE_OFF,
    BOOL,
    DOUBLE,
    EMPTY,
    INT,
    N_DOUBLES,
    N_INTS,
    N_KEYS,
    N_NAMES,
    N_OTHERS,
    N_STRINGS,
    OTHER,
    S_NAME_LEN,
    S_NAME_OFF,
    STRING,
    Numbering,
    WireScan,
    number,
    scan_request,
    words_of,
)
from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from tests.fuzz.test_fuzz_decode import FUZZ


def reference(payload: bytes, attrs: np.ndarray, needed: np.ndarray, spans: np.ndarray, max_len: int) -> dict[str, Any]:
    """What ``number`` must give, from dicts: ids in order of first sight, per kind of item."""
    rows: list[list[int]] = [[] for _ in range(N_NAMES + 1)]
    seen: list[dict[object, int]] = [{} for _ in range(N_NAMES + 1)]

    def number_of(row: int, item: object, index: int) -> int:
        if item is None or item not in seen[row]:  # None: too long to look up, a number of its own
            rows[row].append(index)
            if item is None:
                return len(rows[row]) - 1
            seen[row][item] = len(rows[row]) - 1
        return seen[row][item]

    def text(off: int, length: int, limit: int) -> bytes | None:
        return None if length > limit else payload[off:off + length]

    key_ids = [number_of(N_KEYS, text(int(r[A_KEY_OFF]), int(r[A_KEY_LEN]), max_len), i) for i, r in enumerate(attrs)]
    local: list[tuple[int, int]] = []  # (row, number), row -1: a fixed value number
    for i, r in enumerate(attrs):
        kind = int(r[A_KIND])
        if kind == STRING:
            local.append((N_STRINGS, number_of(N_STRINGS, text(int(r[A_VALUE_OFF]), int(r[A_VALUE_LEN]), max_len), i)))
        elif kind in (INT, DOUBLE):
            row = N_INTS if kind == INT else N_DOUBLES
            local.append((row, number_of(row, int(r[A_NUMBER]), i)))
        elif kind == OTHER and needed[i]:
            local.append((N_OTHERS, number_of(N_OTHERS, payload[r[A_ANY_OFF]:r[A_ANY_OFF] + r[A_ANY_LEN]], i)))
        elif kind == BOOL:
            local.append((-1, 1 if r[A_NUMBER] else 2))
        else:
            local.append((-1, 0))
    base = {N_STRINGS: 3}
    for row in (N_INTS, N_DOUBLES, N_OTHERS):
        base[row] = base[row - 1] + len(rows[row - 1])
    value_ids = [n if row < 0 else base[row] + n for row, n in local]
    name_ids = [number_of(N_NAMES, text(int(s[S_NAME_OFF]), int(s[S_NAME_LEN]), max_len), i) for i, s in enumerate(spans)]
    return {"key_ids": key_ids, "value_ids": value_ids, "name_ids": name_ids, "firsts": rows}


def compare(numbering: Numbering, expected: dict[str, Any]) -> None:
    assert numbering.key_ids.tolist() == expected["key_ids"]
    assert numbering.value_ids.tolist() == expected["value_ids"]
    assert numbering.name_ids.tolist() == expected["name_ids"]
    assert [f.tolist() for f in numbering.firsts] == expected["firsts"]


def by_python(payload: bytes, attrs: np.ndarray, needed: np.ndarray, spans: np.ndarray, max_len: int) -> Numbering:
    """``number``'s compiled loop run as Python (its source, as the coverage run reads it)."""
    n, m = len(attrs), len(spans)
    key_ids, value_ids = np.empty(n, np.int64), np.empty(n, np.int64)
    name_ids = np.empty(m, np.int64)
    firsts = np.empty((N_NAMES + 1, max(n, m)), np.int64)
    counts = np.empty(N_NAMES + 1, np.int64)
    with np.errstate(over="ignore"):  # the hash multiplies wrap, as they do compiled
        finished = otlp_scan._number.py_func(np.frombuffer(payload, np.uint8), words_of(payload), attrs, needed, spans,
                                             max_len, key_ids, value_ids, name_ids, firsts, counts,
                                             otlp_scan.PROBES_PER_ITEM, otlp_scan.HASH_SEED)
    assert finished
    return Numbering(key_ids, value_ids, name_ids, [firsts[r, :c] for r, c in enumerate(counts.tolist())])


@st.composite
def tables(draw: st.DrawFn) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, int]:
    """A buffer of few distinct bytes (so strings repeat), attribute and span rows pointing anywhere in it."""
    payload = draw(st.binary(max_size=40).map(lambda b: bytes(x % 3 + (0x80 if x & 8 else 0x61) for x in b)))
    size = len(payload)
    ranges = st.integers(0, size).flatmap(lambda o: st.tuples(st.just(o), st.integers(0, size - o)))
    numbers = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
    n = draw(st.integers(0, 30))
    attrs = np.zeros((n, 8), np.int64)
    for i in range(n):
        attrs[i, A_KEY_OFF], attrs[i, A_KEY_LEN] = draw(ranges)
        kind = draw(st.sampled_from([EMPTY, STRING, BOOL, INT, DOUBLE, OTHER]))
        attrs[i, A_KIND] = kind
        attrs[i, A_VALUE_OFF], attrs[i, A_VALUE_LEN] = draw(ranges)
        attrs[i, A_ANY_OFF], attrs[i, A_ANY_LEN] = draw(ranges)
        attrs[i, A_NUMBER] = draw(numbers) if kind != DOUBLE else struct.unpack(
            "<q", struct.pack("<d", draw(st.sampled_from([0.0, -0.0, 0.2, 1e300, float("nan"), float("inf")]))))[0]
    needed = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    m = draw(st.integers(0, 10))
    spans = np.zeros((m, 15), np.int64)
    for i in range(m):
        spans[i, S_NAME_OFF], spans[i, S_NAME_LEN] = draw(ranges)
    return payload, attrs, needed, spans, draw(st.sampled_from([0, 3, 9, 128]))


def _scan_of(payload: bytes, attrs: np.ndarray, spans: np.ndarray) -> WireScan:
    empty = np.zeros((0, 3), np.int64)
    return WireScan(np.frombuffer(payload, np.uint8), spans, attrs, empty[:, :2], empty)


@FUZZ
@given(tables())
def test_numbering_as_plain_python_numbers(table: tuple[bytes, np.ndarray, np.ndarray, np.ndarray, int]) -> None:
    """Equal bytes (or numbers, for ints and doubles' bits) share a number, and only they; long
    strings (keys, strings, names) each have their own; AnyValues of spans the records leave out get 0."""
    payload, attrs, needed, spans, max_len = table
    expected = reference(payload, attrs, needed, spans, max_len)
    compare(number(_scan_of(payload, attrs, spans), payload, needed, max_len), expected)
    compare(by_python(payload, attrs, needed, spans, max_len), expected)


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 16, 23])
def test_every_short_string_at_every_place(size: int) -> None:
    """Every (offset, length) of a buffer, the last bytes and buffers under one load (8 bytes) included:
    two ranges share a number exactly when their bytes are equal."""
    payload = bytes(b"abab\x00aba\xffab"[i % 11] for i in range(size))
    ranges = [(o, n) for o in range(size + 1) for n in range(size - o + 1)] or [(0, 0)]
    attrs = np.zeros((len(ranges), 8), np.int64)
    attrs[:, A_KEY_OFF], attrs[:, A_KEY_LEN] = zip(*ranges, strict=True)
    attrs[:, A_VALUE_OFF], attrs[:, A_VALUE_LEN] = attrs[:, A_KEY_OFF], attrs[:, A_KEY_LEN]
    attrs[:, A_KIND] = STRING
    spans = np.zeros((len(ranges), 15), np.int64)
    spans[:, S_NAME_OFF], spans[:, S_NAME_LEN] = attrs[:, A_KEY_OFF], attrs[:, A_KEY_LEN]
    needed = np.ones(len(ranges), bool)
    expected = reference(payload, attrs, needed, spans, 128)
    assert len(expected["firsts"][N_KEYS]) == len({payload[o:o + n] for o, n in ranges})
    compare(number(_scan_of(payload, attrs, spans), payload, needed), expected)
    compare(by_python(payload, attrs, needed, spans, 128), expected)


def test_many_distinct_strings_that_share_their_first_and_last_bytes() -> None:
    """Thousands of keys alike but for a middle byte pair, and as many values: one number each (a hash of
    only some of the bytes would put them all in one chain; the result would still be right, slowly)."""
    items = [b"gen_ai.usage.%02x%02x.tokens" % (i // 256, i % 256) for i in range(3000)]
    payload = b"".join(items * 2)
    step = len(items[0])
    attrs = np.zeros((2 * len(items), 8), np.int64)
    attrs[:, A_KEY_OFF] = np.arange(2 * len(items)) * step
    attrs[:, A_KEY_LEN] = step
    attrs[:, A_KIND] = INT
    attrs[:, A_NUMBER] = np.arange(2 * len(items)) % len(items) - 1500
    spans = np.zeros((0, 15), np.int64)
    numbering = number(_scan_of(payload, attrs, spans), payload, np.ones(len(attrs), bool))
    assert numbering.key_ids.tolist() == list(range(len(items))) * 2
    assert numbering.value_ids.tolist() == [3 + i for i in range(len(items))] * 2


def columns_describe_the_records(payload: bytes, decoded: DecodedBatch) -> None:
    """The attribute columns hold the records' dicts: each row's slots, keys and values by their ids, make
    the record's attributes; equal ints, and doubles of equal bits, share one value each (run by
    ``test_fuzz_scan`` on its fuzzed requests)."""
    scan = scan_request(payload, DecodeLimits())
    assert scan is not None and decoded.columns is not None
    c = decoded.columns
    assert len(c.dicts) == len(decoded.records)
    for i, record in enumerate(decoded.records):
        slots = range(c.begins[i], c.ends[i])
        assert record.attributes is c.dicts[i]
        assert dict(zip([c.keys[c.key_ids[s]] for s in slots], [c.values[c.value_ids[s]] for s in slots],
                        strict=True)) == record.attributes
        assert c.sizes[i] == len(record.attributes)
    kinds = scan.attributes[:, A_KIND]
    for kind in (INT, DOUBLE):
        ids = c.value_ids[kinds == kind]
        assert len(set(ids.tolist())) == len(set(scan.attributes[kinds == kind, A_NUMBER].tolist()))


def test_columns_of_a_request_describe_its_records() -> None:
    """Repeated ints and doubles are one value each in the columns (a distinct value is rendered once)."""
    request = make_request([make_span({**genai_attributes(input_tokens=i % 3), "gen_ai.request.temperature": i % 2 / 5,
                                       "x": [1, 2], "y": True}) for i in range(6)], {"tenant.id": "t"})
    payload = request.SerializeToString()
    scan = scan_request(payload, DecodeLimits())
    assert scan is not None
    decoded = decode_scan(scan, payload, DecodeLimits())
    assert decoded is not None and decoded.columns is not None
    columns_describe_the_records(payload, decoded)
    assert sorted(decoded.columns.values[:3]) == ["", "false", "true"]
    assert len(decoded.columns.values) == len(set(decoded.columns.values))  # 0.0 and 0.2 on three spans each: once


_MASK64 = (1 << 64) - 1


def _colliding_keys(count: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct 8-byte keys whose numbering hash under ``seed`` ends in 24 zero bits: every one lands
    on slot 0 of any table up to 2**24 slots (a hostile client's keys, had it the seed). Each is the hash run
    backwards from a chosen value: the murmur3 finalizer and the loop's multiply and xorshifts are each
    invertible."""
    mul, fmix = 0x9E3779B97F4A7C15, 0xFF51AFD7ED558CCD
    start = ((8 ^ seed) * mul) & _MASK64  # the hash of an 8-byte key (row N_KEYS) before its one word
    keys = []
    for k in range(1, count + 1):
        x = k << 24
        x ^= x >> 33
        x = (x * pow(fmix, -1, 1 << 64)) & _MASK64
        x ^= x >> 33
        x ^= x >> 32
        x = (x * pow(mul, -1, 1 << 64)) & _MASK64
        keys.append((x ^ start).to_bytes(8, "little"))
    return keys


def _key_table(keys: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    payload = b"".join(keys)
    attrs = np.zeros((len(keys), 8), np.int64)
    attrs[:, A_KEY_OFF] = np.arange(len(keys)) * 8
    attrs[:, A_KEY_LEN] = 8
    attrs[:, A_KIND] = EMPTY
    return payload, attrs, np.zeros((0, 15), np.int64)


def test_keys_made_to_collide_are_declined_not_probed_quadratically() -> None:
    """3,000 keys on one slot would take ~4.5 M probing steps; the numbering gives up after its budget (32 a
    key) and the request goes to protobuf. As many keys that do not collide are numbered, and the colliding
    ones are numbered right too when the budget allows it (the decline is the budget's, not a wrong answer).
    The keys are built for a known seed (what a client that could read the process's seed would send)."""
    seed = 0x5EED
    keys = _colliding_keys(3000, seed)
    assert len(set(keys)) == len(keys)
    payload, attrs, spans = _key_table(keys)
    needed = np.ones(len(keys), bool)
    assert number(_scan_of(payload, attrs, spans), payload, needed, seed=seed) is None
    with np.errstate(over="ignore"):
        assert not otlp_scan._number.py_func(
            np.frombuffer(payload, np.uint8), words_of(payload), attrs, needed, spans, 128,
            np.empty(len(keys), np.int64), np.empty(len(keys), np.int64), np.empty(0, np.int64),
            np.empty((N_NAMES + 1, len(keys)), np.int64), np.empty(N_NAMES + 1, np.int64), otlp_scan.PROBES_PER_ITEM,
            seed)
    few = keys[:200]  # ~20,000 steps: numbered in full with a budget that covers them
    payload, attrs, spans = _key_table(few)
    numbering = number(_scan_of(payload, attrs, spans), payload, np.ones(len(few), bool), probes_per_item=200,
                       seed=seed)
    assert numbering is not None and numbering.key_ids.tolist() == list(range(len(few)))
    plain = [b"k%07d" % i for i in range(3000)]
    payload, attrs, spans = _key_table(plain)
    numbering = number(_scan_of(payload, attrs, spans), payload, np.ones(len(plain), bool))
    assert numbering is not None and numbering.key_ids.tolist() == list(range(len(plain)))


def test_keys_built_for_one_seed_do_not_collide_under_another() -> None:
    """What the secret seed buys: the same 3,000 keys, numbered under the process's own seed (and under a few
    others), spread over the table and are numbered in full, within the budget; keys built for the process's
    seed are declined again (so the seed is what decides it, not the keys)."""
    keys = _colliding_keys(3000, 0x5EED)
    payload, attrs, spans = _key_table(keys)
    needed = np.ones(len(keys), bool)
    for seed in (otlp_scan.HASH_SEED, 1, 2**62 + 12345):
        numbering = number(_scan_of(payload, attrs, spans), payload, needed, seed=seed)
        assert numbering is not None and numbering.key_ids.tolist() == list(range(len(keys)))
    assert number(_scan_of(payload, attrs, spans), payload, needed) is not None  # the default: HASH_SEED
    own = _colliding_keys(3000, otlp_scan.HASH_SEED)
    payload, attrs, spans = _key_table(own)
    assert number(_scan_of(payload, attrs, spans), payload, needed) is None


def test_the_seed_is_secret_per_process() -> None:
    """Two processes draw two seeds (63 bits from os.urandom), and the seed fits the compiled loop's int64."""
    import subprocess
    import sys

    code = "from llm_cost_tracker.sources import otlp_scan; print(otlp_scan.HASH_SEED)"
    seeds = {int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
             for _ in range(2)}
    assert len(seeds) == 2 and all(0 <= s < 2**63 for s in seeds)


def test_a_declined_numbering_leaves_the_request_to_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    """``decode_scan`` answers None when the numbering declines (the caller then decodes with protobuf)."""
    from llm_cost_tracker.sources import otlp_records

    spans = [make_span(genai_attributes(input_tokens=i + 1)) for i in range(40)]
    payload = make_request(spans, {"service.name": "svc"}).SerializeToString()
    scan = scan_request(payload, DecodeLimits())
    assert scan is not None
    assert decode_scan(scan, payload, DecodeLimits()) is not None
    monkeypatch.setattr(otlp_records, "number",
                        lambda scan, payload, needed: number(scan, payload, needed, probes_per_item=-1_000))
    assert decode_scan(scan, payload, DecodeLimits()) is None
