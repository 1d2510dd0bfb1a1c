"""Call identity's window in arrays: carriers in a ring, found through open-addressing tables of 128-bit keys.

Why: with a full window (100,000 carriers, the state of a service from a few hundred spans per second on) the
window of Python dicts cost ~3.5 us of CPU per span, most of it memory: each span filed three keys in
dicts of 100,000 entries and evicted the oldest carrier from all three, touching tuples and strings that had
long left the caches (docs/performance.md). Here a carrier is one row of flat arrays, filed and evicted by
compiled loops (``compiled``), and a carrier's ids are not kept as strings: its row names its request's
ids (:class:`SpanIds`, one object per request) and its place among them, read only when a duplicate names
its carrier.

**Keys.** Each key is 128 bits: two 64-bit hashes from independent hashes of its strings (SipHash-2-4 of their
UTF-8 bytes under two keys drawn per process, :func:`sip_hashes`: a client cannot aim at a collision), mixed
per key. Two different keys are taken for one with a probability of ~2^-128 per
pair; ClickHouse's insert deduplication rests on the same size of hash. Token counts, which a hash could mix
up, are compared exactly.

**The ring.** Carriers are numbered in arrival order (``seq``) and live in slot ``seq & mask``: the oldest
leaves from the front (by age or capacity), a forgotten one (``forget``) is flagged dead in place and passed
over there, and the ring is laid out again (bigger, or without the dead) when it fills or when the dead
outnumber the living. The tables map a key to a carrier's ``seq``: one for the span (trace and span id), one
for the response (a response has one carrier), one for the usage that names the newest carrier of that
usage, each carrier naming the one before it (``uprev``): a usage bucket is that chain, newest first, dead
carriers passed over.

The rules are those of ``calls.py``'s docstring, decided here in the same order; ``tests/transforms`` runs
this against the implementation of dicts it replaced on generated requests.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.compiled import compiled_or_python

__all__ = ["ABSORBED", "CALL_KEYS", "CALL_PARTS", "KERNELS", "RULES", "SCAN", "HexIds", "IdLists", "SpanIds", "WindowArrays",
           "derive", "sip_hashes"]

# Columns of a span's keys (the kernel's input and a carrier's row of ``WindowArrays.keys``): pairs of uint64.
K1, K2 = 0, 1  # the span: (trace id, span id)
P1, P2 = 2, 3  # its parent: (trace id, parent span id), compared with carriers' spans (the ``nested`` rule)
R1, R2 = 4, 5  # the response: (tenant, provider, response id)
U1, U2 = 6, 7  # the usage: (tenant, service, instance, provider, input and output tokens)
C1, C2 = 8, 9  # the instrumentation scope
S1, S2 = 10, 11  # the span id alone (what a carrier absorbed)
CALL_KEYS = 12
"""Columns of a span's keys."""

HAS_RESPONSE, HAS_USAGE, HAS_SCOPE, ALIVE = 1, 2, 4, 8
"""Bits of a span's flags (``ALIVE``: of a carrier's, not forgotten)."""

RULES = ("", "response_id", "nested", "overlap")
"""The rule of each code the kernel marks a duplicate with."""
DONE, RING_FULL, ABSORBED_FULL = 0, 1, 2
ABSORBED = 2
"""Spans of other scopes a carrier can absorb before its row grows (each a scope and a span id)."""

_SPAN_TABLE, _RESPONSE_TABLE, _USAGE_TABLE = 0, 1, 2
_EMPTY = -1
HEAD, TAIL, LIVE, DEAD = 0, 1, 2, 3
"""Items of ``WindowArrays.meta``."""

# Columns of a span's parts (``derive``'s input): the two hashes of each of its strings.
TRACE, SPAN, PARENT, RESPONSE, TENANT, PROVIDER, SERVICE, INSTANCE, SCOPE = (0, 2, 4, 6, 8, 10, 12, 14, 16)
CALL_PARTS = 18
"""Columns of a span's parts."""


@compiled_or_python
def sip_hashes(text: np.ndarray, ends: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    """SipHash-2-4 of each string of ``text`` (UTF-8 bytes laid end to end, the k-th ending at ``ends[k]``, or,
    with ``ends`` empty, each followed by a 0 byte that none of them contains) under two 128-bit keys
    (``keys[0:2]`` and ``keys[2:4]``, drawn per process): ``out[0, k]`` and ``out[1, k]``. SipHash is a keyed
    pseudo-random function made for hash tables fed by clients (Python's own ``hash`` of a string is one):
    without the keys a client cannot aim at a collision. ``tests/transforms/test_calls.py`` checks it against
    the reference vectors of its authors."""
    separated = len(ends) == 0
    c0 = np.uint64(0x736F6D6570736575)
    c1 = np.uint64(0x646F72616E646F6D)
    c2 = np.uint64(0x6C7967656E657261)
    c3 = np.uint64(0x7465646279746573)
    s13 = np.uint64(13)
    s51 = np.uint64(51)
    s32 = np.uint64(32)
    s16 = np.uint64(16)
    s48 = np.uint64(48)
    s21 = np.uint64(21)
    s43 = np.uint64(43)
    s17 = np.uint64(17)
    s47 = np.uint64(47)
    s56 = np.uint64(56)
    ff = np.uint64(0xFF)
    start = 0
    for k in range(out.shape[1]):
        if separated:
            end = start
            while end < len(text) and text[end] != 0:
                end += 1
        else:
            end = ends[k]
        for h in range(2):
            k0 = keys[2 * h]
            k1 = keys[2 * h + 1]
            v0 = k0 ^ c0
            v1 = k1 ^ c1
            v2 = k0 ^ c2
            v3 = k1 ^ c3
            i = start
            m = np.uint64(0)
            step = 0  # 0: a word of the message; 1: its last word (the rest, the length's low byte); 2: finish
            while step < 3:
                rounds = 4
                if step < 2:
                    m = np.uint64(0)
                    if i + 8 <= end:
                        for b in range(8):
                            m |= np.uint64(text[i + b]) << np.uint64(8 * b)
                        i += 8
                    else:
                        for b in range(end - i):
                            m |= np.uint64(text[i + b]) << np.uint64(8 * b)
                        m |= np.uint64((end - start) & 0xFF) << s56
                        step = 1
                    v3 ^= m
                    rounds = 2
                else:
                    v2 ^= ff
                for _ in range(rounds):  # SipRounds (one body: a compiled loop cannot call another)
                    v0 += v1
                    v1 = (v1 << s13) | (v1 >> s51)
                    v1 ^= v0
                    v0 = (v0 << s32) | (v0 >> s32)
                    v2 += v3
                    v3 = (v3 << s16) | (v3 >> s48)
                    v3 ^= v2
                    v0 += v3
                    v3 = (v3 << s21) | (v3 >> s43)
                    v3 ^= v0
                    v2 += v1
                    v1 = (v1 << s17) | (v1 >> s47)
                    v1 ^= v2
                    v2 = (v2 << s32) | (v2 >> s32)
                if step < 2:
                    v0 ^= m
                    step = 2 if step == 1 else 0
                else:
                    step = 3
            out[h, k] = v0 ^ v1 ^ v2 ^ v3
        start = end + 1 if separated else end


@compiled_or_python
def derive(parts: np.ndarray, tokens: np.ndarray, keys: np.ndarray) -> None:
    """Each span's keys (:data:`CALL_KEYS` columns) from its parts (:data:`CALL_PARTS` columns: two 64-bit hashes of
    each string) and, for the usage key, its token counts. A key's first half mixes the parts' first hashes, its
    second half their second hashes; each part is mixed into what follows it with SplitMix64's finalizer (a
    bijection), under a salt per kind of key (the parent's key is the span's kind: the two are compared)."""
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    for j in range(len(parts)):
        for half in range(2):
            for kind in range(4):  # K (trace, span), P (trace, parent), R (tenant, provider, response), U
                if kind == 0:
                    a, b, c, d, count = TRACE, SPAN, 0, 0, 2
                elif kind == 1:
                    a, b, c, d, count = TRACE, PARENT, 0, 0, 2
                elif kind == 2:
                    a, b, c, d, count = TENANT, PROVIDER, RESPONSE, 0, 3
                else:
                    a, b, c, d, count = TENANT, SERVICE, INSTANCE, PROVIDER, 6
                z = np.uint64(2 * (0 if kind == 1 else kind) + half + 1)
                for p in range(count):
                    if p < 4:
                        part = parts[j, (a, b, c, d)[p] + half]
                    else:  # the usage's token counts (compared exactly too: see _file)
                        part = np.uint64(tokens[j, p - 4])
                    z = z ^ (z >> np.uint64(30))
                    z = z * m1
                    z = z ^ (z >> np.uint64(27))
                    z = z * m2
                    z = z ^ (z >> np.uint64(31))
                    z = z ^ part
                    z = z ^ (z >> np.uint64(30))
                    z = z * m1
                    z = z ^ (z >> np.uint64(27))
                    z = z * m2
                    z = z ^ (z >> np.uint64(31))
                keys[j, 2 * kind + half] = z
            keys[j, 8 + half] = parts[j, SCOPE + half]
            keys[j, 10 + half] = parts[j, SPAN + half]


@compiled_or_python
def _file(keys: np.ndarray, flags: np.ndarray, tokens: np.ndarray, times: np.ndarray, now: float, first: int,
          ring_keys: np.ndarray, ring_flags: np.ndarray, ring_tokens: np.ndarray, ring_times: np.ndarray,
          ring_arrived: np.ndarray, ring_seq: np.ndarray, ring_uprev: np.ndarray, absorbed_n: np.ndarray,
          absorbed: np.ndarray, table_keys: np.ndarray, table_seq: np.ndarray, meta: np.ndarray, scan: int,
          out_carrier: np.ndarray, out_rule: np.ndarray, out_filed: np.ndarray) -> tuple[int, int]:
    """Spans ``first`` on, in the order given, each: skipped (no response and no usage, or its span filed
    already: the same span again), marked a duplicate of a carrier (``out_carrier``: its seq, ``out_rule``: the
    index of its rule in :data:`RULES`), or filed as a carrier (``out_filed``: its seq). Returns (the next span,
    ``DONE``), or stops before a span that needs a bigger ring (``RING_FULL``) or a wider absorbed row
    (``ABSORBED_FULL``), having changed nothing for it: the caller grows the arrays and calls again from there."""
    mask = len(ring_seq) - 1
    tmask = table_seq.shape[1] - 1
    utmask = np.uint64(tmask)
    width = absorbed.shape[1]
    head = meta[0]
    for j in range(first, len(flags)):
        f = flags[j]
        out_carrier[j] = -1
        out_rule[j] = 0
        out_filed[j] = -1
        if (f & 3) == 0:
            continue
        # its span filed already (a retried Export): span identity's business, not a second instrumentation
        i = np.int64(keys[j, 0] & utmask)
        seen = False
        while table_seq[0, i] != -1:
            if table_keys[0, i, 0] == keys[j, 0] and table_keys[0, i, 1] == keys[j, 1]:
                seen = True
                break
            i = (i + 1) & tmask
        if seen:
            continue
        span_row = i
        # the carrier of its response: a duplicate
        response_row = np.int64(-1)
        if f & 1:
            i = np.int64(keys[j, 4] & utmask)
            named = -1
            while table_seq[1, i] != -1:
                if table_keys[1, i, 0] == keys[j, 4] and table_keys[1, i, 1] == keys[j, 5]:
                    named = table_seq[1, i]
                    break
                i = (i + 1) & tmask
            if named >= 0:
                out_carrier[j] = named
                out_rule[j] = 1
                continue
            response_row = i
        # the carriers of its usage: a duplicate of the one it is nested in, else of one it overlaps
        usage_row = np.int64(-1)
        newest = -1
        if f & 2:
            i = np.int64(keys[j, 6] & utmask)
            while table_seq[2, i] != -1:
                if table_keys[2, i, 0] == keys[j, 6] and table_keys[2, i, 1] == keys[j, 7]:
                    s = table_seq[2, i] & mask
                    if ring_tokens[s, 0] == tokens[j, 0] and ring_tokens[s, 1] == tokens[j, 1]:
                        newest = table_seq[2, i]
                        break
                i = (i + 1) & tmask
            usage_row = i
            if newest >= 0 and f & 4:
                carrier = -1
                rule = 0
                overlapping = -1
                looked = 0
                q = newest
                while q >= head and looked < scan:
                    s = q & mask
                    q = ring_uprev[s]
                    if not ring_flags[s] & 8:
                        continue  # forgotten: not in the bucket
                    looked += 1
                    if ring_keys[s, 8] == keys[j, 8] and ring_keys[s, 9] == keys[j, 9]:
                        continue  # the same instrumentation
                    taken = False
                    for a in range(absorbed_n[s]):
                        if absorbed[s, a, 0] == keys[j, 8] and absorbed[s, a, 1] == keys[j, 9]:
                            taken = absorbed[s, a, 2] != keys[j, 10] or absorbed[s, a, 3] != keys[j, 11]
                            break
                    if taken:
                        continue  # its span of this scope is known (a retry of that span matches)
                    if f & 1 and ring_flags[s] & 1:
                        continue  # both name their response, and not the same one: two calls
                    if ((ring_keys[s, 0] == keys[j, 2] and ring_keys[s, 1] == keys[j, 3])
                            or (ring_keys[s, 2] == keys[j, 0] and ring_keys[s, 3] == keys[j, 1])):
                        carrier = ring_seq[s]
                        rule = 2
                        break
                    if overlapping < 0 and ring_times[s, 0] <= times[j, 1] and times[j, 0] <= ring_times[s, 1]:
                        overlapping = ring_seq[s]
                if carrier < 0 and overlapping >= 0:
                    carrier = overlapping
                    rule = 3
                if carrier >= 0:
                    s = carrier & mask
                    at = absorbed_n[s]
                    for a in range(absorbed_n[s]):
                        if absorbed[s, a, 0] == keys[j, 8] and absorbed[s, a, 1] == keys[j, 9]:
                            at = a
                            break
                    if at == width:
                        return j, 2
                    absorbed[s, at, 0] = keys[j, 8]
                    absorbed[s, at, 1] = keys[j, 9]
                    absorbed[s, at, 2] = keys[j, 10]
                    absorbed[s, at, 3] = keys[j, 11]
                    if at == absorbed_n[s]:
                        absorbed_n[s] = at + 1
                    out_carrier[j] = carrier
                    out_rule[j] = rule
                    continue
        # a carrier: a row of the ring, filed under each of its keys
        tail = meta[1]
        if tail - head > mask:
            return j, 1
        s = tail & mask
        for c in range(12):
            ring_keys[s, c] = keys[j, c]
        ring_flags[s] = (f & 3) | 8
        ring_tokens[s, 0] = tokens[j, 0]
        ring_tokens[s, 1] = tokens[j, 1]
        ring_times[s, 0] = times[j, 0]
        ring_times[s, 1] = times[j, 1]
        ring_arrived[s] = now
        ring_seq[s] = tail
        ring_uprev[s] = newest
        absorbed_n[s] = 0
        table_keys[0, span_row, 0] = keys[j, 0]
        table_keys[0, span_row, 1] = keys[j, 1]
        table_seq[0, span_row] = tail
        if response_row >= 0:
            table_keys[1, response_row, 0] = keys[j, 4]
            table_keys[1, response_row, 1] = keys[j, 5]
            table_seq[1, response_row] = tail
        if usage_row >= 0:
            table_keys[2, usage_row, 0] = keys[j, 6]
            table_keys[2, usage_row, 1] = keys[j, 7]
            table_seq[2, usage_row] = tail
        out_filed[j] = tail
        meta[1] = tail + 1
        meta[2] += 1
    return len(flags), 0


@compiled_or_python
def _unfile(seqs: np.ndarray, limit: float, most: int, ring_keys: np.ndarray, ring_flags: np.ndarray,
            ring_arrived: np.ndarray, ring_seq: np.ndarray, ring_uprev: np.ndarray, absorbed_n: np.ndarray,
            table_keys: np.ndarray, table_seq: np.ndarray, meta: np.ndarray) -> int:
    """Takes carriers out of the window; how many live ones it took.

    With ``seqs`` empty, the oldest (eviction): up to ``most`` live ones, stopping at a live one that arrived after
    ``limit`` (NaN: none stops it); the forgotten met on the way leave the ring uncounted. Else those of the
    carriers ``seqs`` names that are live (``forget``): flagged dead, left in their rows until they reach the front."""
    mask = len(ring_seq) - 1
    tmask = table_seq.shape[1] - 1
    utmask = np.uint64(tmask)
    taken = 0
    n = 0
    evicting = len(seqs) == 0
    while True:
        if evicting:
            q = meta[0]
            if taken >= most or q == meta[1]:
                break
            s = q & mask
            if not ring_flags[s] & 8:  # forgotten earlier: leaves uncounted
                meta[0] = q + 1
                meta[3] -= 1
                continue
            if limit == limit and ring_arrived[s] > limit:
                break
            meta[0] = q + 1
        else:
            if n == len(seqs):
                break
            q = seqs[n]
            n += 1
            s = q & mask
            if not ring_flags[s] & 8:  # named twice: forgotten already
                continue
            meta[3] += 1
        taken += 1
        meta[2] -= 1
        ring_flags[s] &= 7
        absorbed_n[s] = 0
        for t in range(3):
            if (t == 1 and not ring_flags[s] & 1) or (t == 2 and not ring_flags[s] & 2):
                continue
            c = 0 if t == 0 else 2 * t + 2  # the key's columns: K, R or U
            i = np.int64(ring_keys[s, c] & utmask)
            while table_seq[t, i] != -1 and table_seq[t, i] != q:
                i = (i + 1) & tmask
            if table_seq[t, i] != q:
                continue  # a usage row names the newest carrier of its bucket: another one
            if t == 2:  # the next live carrier of the bucket is its newest now, if any
                older = ring_uprev[s]
                while older >= meta[0] and not ring_flags[older & mask] & 8:
                    older = ring_uprev[older & mask]
                if older >= meta[0]:
                    table_seq[t, i] = older
                    continue
            # row i leaves; the rows after it that probed past it shift back (no tombstones)
            k = i
            while True:
                k = (k + 1) & tmask
                if table_seq[t, k] == -1:
                    break
                home = np.int64(table_keys[t, k, 0] & utmask)
                if (home <= i or home > k) if k > i else (home <= i and home > k):
                    table_keys[t, i, 0] = table_keys[t, k, 0]
                    table_keys[t, i, 1] = table_keys[t, k, 1]
                    table_seq[t, i] = table_seq[t, k]
                    i = k
            table_seq[t, i] = -1
    return taken


@compiled_or_python
def _lookup(keys: np.ndarray, table_keys: np.ndarray, table_seq: np.ndarray, out: np.ndarray) -> None:
    """The seq the span table names for each row of ``keys`` (columns ``K1``, ``K2``), -1 where none."""
    tmask = table_seq.shape[1] - 1
    utmask = np.uint64(tmask)
    for j in range(len(keys)):
        out[j] = -1
        i = np.int64(keys[j, 0] & utmask)
        while table_seq[0, i] != -1:
            if table_keys[0, i, 0] == keys[j, 0] and table_keys[0, i, 1] == keys[j, 1]:
                out[j] = table_seq[0, i]
                break
            i = (i + 1) & tmask


@compiled_or_python
def _refile(head: int, tail: int, chain: bool, ring_keys: np.ndarray, ring_flags: np.ndarray,
            ring_tokens: np.ndarray, ring_uprev: np.ndarray, table_keys: np.ndarray, table_seq: np.ndarray) -> None:
    """Files the live carriers ``head..tail`` of a ring laid out again into empty tables, in arrival order (so a
    usage row ends naming its bucket's newest); with ``chain``, each carrier's ``uprev`` is set again too (the
    live carrier of its usage before it)."""
    mask = len(ring_uprev) - 1
    tmask = table_seq.shape[1] - 1
    utmask = np.uint64(tmask)
    for q in range(head, tail):
        s = q & mask
        if not ring_flags[s] & 8:
            continue
        for t in range(3):
            if (t == 1 and not ring_flags[s] & 1) or (t == 2 and not ring_flags[s] & 2):
                continue
            c = 0 if t == 0 else 2 * t + 2
            i = np.int64(ring_keys[s, c] & utmask)
            before = -1
            while table_seq[t, i] != -1:
                if t == 2 and table_keys[t, i, 0] == ring_keys[s, c] and table_keys[t, i, 1] == ring_keys[s, c + 1]:
                    o = table_seq[t, i] & mask
                    if ring_tokens[o, 0] == ring_tokens[s, 0] and ring_tokens[o, 1] == ring_tokens[s, 1]:
                        before = table_seq[t, i]
                        break
                i = (i + 1) & tmask
            if t == 2 and chain:
                ring_uprev[s] = before
            table_keys[t, i, 0] = ring_keys[s, c]
            table_keys[t, i, 1] = ring_keys[s, c + 1]
            table_seq[t, i] = q


class SpanIds:
    """A request's span ids, as call identity names a carrier by them (only when a duplicate is found): the
    record path's two lists of strings (:class:`IdLists`) or the columnar path's hex texts (:class:`HexIds`)."""

    __slots__ = ()

    def pair(self, i: int) -> tuple[str, str]:
        """(trace id, span id) of span ``i``."""
        raise NotImplementedError

    def pairs(self) -> list[tuple[str, str]]:
        """(trace id, span id) of every span, in order."""
        raise NotImplementedError


class IdLists(SpanIds):
    """Span ids as two lists of strings (the record path's)."""

    __slots__ = ("_spans", "_traces")

    def __init__(self, traces: list[str], spans: list[str]) -> None:
        self._traces, self._spans = traces, spans

    def pair(self, i: int) -> tuple[str, str]:
        return self._traces[i], self._spans[i]

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self._traces, self._spans, strict=True))


class HexIds(SpanIds):
    """Span ids as the hex text of a request's trace ids (32 characters each) and span ids (16), end to end: no
    string per span (the columnar path's)."""

    __slots__ = ("_span_text", "_trace_text")

    def __init__(self, trace_text: str, span_text: str) -> None:
        self._trace_text, self._span_text = trace_text, span_text

    def pair(self, i: int) -> tuple[str, str]:
        return self._trace_text[32 * i:32 * i + 32], self._span_text[16 * i:16 * i + 16]

    def pairs(self) -> list[tuple[str, str]]:
        return [self.pair(i) for i in range(len(self._span_text) // 16)]


class WindowArrays:
    """The carriers of a window (see the module docstring) and the Python side of its compiled loops: grows the
    ring when a request needs more rows, lays it out without the forgotten when they outnumber the living.

    Not thread-safe: ``CallIdentity`` holds its lock around every call.

    Args:
        capacity: rows of the ring to start with (rounded up to a power of two; it doubles when full).
    """

    def __init__(self, capacity: int) -> None:
        self.meta = np.zeros(4, np.int64)
        """head, tail (the seqs of the oldest row and of the next one), live and forgotten carriers in the ring."""
        self._allocate(1 << max(1, (capacity - 1).bit_length()), ABSORBED)

    def _allocate(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.ring_keys = np.zeros((capacity, CALL_KEYS), np.uint64)
        self.ring_flags = np.zeros(capacity, np.int8)
        self.ring_tokens = np.zeros((capacity, 2), np.int64)
        self.ring_times = np.zeros((capacity, 2), np.uint64)
        self.ring_arrived = np.zeros(capacity, np.float64)
        self.ring_seq = np.full(capacity, -1, np.int64)
        self.ring_uprev = np.full(capacity, -1, np.int64)
        self.absorbed_n = np.zeros(capacity, np.int32)
        self.absorbed = np.zeros((capacity, width, 4), np.uint64)
        self.table_keys = np.zeros((3, 2 * capacity, 2), np.uint64)  # at most half full
        self.table_seq = np.full((3, 2 * capacity), _EMPTY, np.int64)
        self.id_sources = np.empty(capacity, object)
        """Per row, the :class:`SpanIds` of the request its carrier came in (None: no carrier yet)."""
        self.id_rows = np.zeros(capacity, np.int64)
        """Per row, its carrier's place among them."""

    @property
    def live(self) -> int:
        return int(self.meta[LIVE])

    @property
    def dead(self) -> int:
        return int(self.meta[DEAD])

    def file(self, keys: np.ndarray, flags: np.ndarray, tokens: np.ndarray, times: np.ndarray,
             now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decides each span (rows of the arguments, in the order they are decided): per span the seq of the carrier
        it duplicates (-1: none), its rule's index in :data:`RULES`, and its own seq if it was filed (-1: not)."""
        n = len(flags)
        carriers = np.empty(n, np.int64)
        rules = np.empty(n, np.int8)
        filed = np.empty(n, np.int64)
        j = 0
        while True:
            j, status = _file(keys, flags, tokens, times, now, j, self.ring_keys, self.ring_flags, self.ring_tokens,
                              self.ring_times, self.ring_arrived, self.ring_seq, self.ring_uprev, self.absorbed_n,
                              self.absorbed, self.table_keys, self.table_seq, self.meta, SCAN, carriers, rules, filed)
            if status == DONE:
                return carriers, rules, filed
            if status == RING_FULL:
                self._layout(2 * self.capacity, drop_dead=False)
            else:
                wider = np.zeros((self.capacity, 2 * self.absorbed.shape[1], 4), np.uint64)
                wider[:, :self.absorbed.shape[1]] = self.absorbed
                self.absorbed = wider

    def evict(self, limit: float, most: int) -> int:
        """Evicts up to ``most`` of the oldest live carriers, those that arrived by ``limit`` (NaN: any); how many."""
        return int(_unfile(_NO_SEQS, limit, most, self.ring_keys, self.ring_flags, self.ring_arrived, self.ring_seq,
                           self.ring_uprev, self.absorbed_n, self.table_keys, self.table_seq, self.meta))

    def forget(self, keys: np.ndarray, compact_min: int) -> None:
        """Forgets the live carriers of the spans ``keys`` names (columns ``K1``, ``K2``); lays the ring out
        again without the forgotten once there are more than ``compact_min`` of them and more than the living."""
        seqs = np.empty(len(keys), np.int64)
        _lookup(keys, self.table_keys, self.table_seq, seqs)
        seqs = seqs[seqs >= 0]
        if len(seqs):
            _unfile(seqs, np.nan, 0, self.ring_keys, self.ring_flags, self.ring_arrived, self.ring_seq,
                    self.ring_uprev, self.absorbed_n, self.table_keys, self.table_seq, self.meta)
        if self.dead > compact_min and self.dead > self.live:
            self._layout(self.capacity, drop_dead=True)

    def name(self, seqs: np.ndarray, ids: SpanIds, positions: np.ndarray) -> None:
        """Name the carriers ``seqs`` (just filed): the spans at ``positions`` of ``ids``."""
        rows = seqs & (self.capacity - 1)
        self.id_sources[rows] = ids
        self.id_rows[rows] = positions

    def carrier_ids(self, seq: int) -> tuple[str, str]:
        """(trace id, span id) of the carrier ``seq``."""
        row = seq & (self.capacity - 1)
        ids = self.id_sources[row]
        assert ids is not None
        return ids.pair(int(self.id_rows[row]))  # type: ignore[no-any-return]

    def _layout(self, capacity: int, drop_dead: bool) -> None:
        """The ring at ``capacity`` rows: the same seqs in their new rows, or, with ``drop_dead``, the live carriers
        numbered again from 0 in arrival order; the tables (and with ``drop_dead``, the usage chains) filed again."""
        head, tail = int(self.meta[HEAD]), int(self.meta[TAIL])
        seqs = np.arange(head, tail, dtype=np.int64)
        rows = seqs & (self.capacity - 1)
        if drop_dead:
            rows = rows[(self.ring_flags[rows] & ALIVE) != 0]
            seqs = np.arange(len(rows), dtype=np.int64)
            head, tail = 0, len(rows)
        old: tuple[np.ndarray, ...] = (self.ring_keys, self.ring_flags, self.ring_tokens, self.ring_times,
                                       self.ring_arrived, self.ring_uprev, self.absorbed_n, self.absorbed)
        old_sources, old_rows = self.id_sources, self.id_rows
        self._allocate(capacity, self.absorbed.shape[1])
        to = seqs & (capacity - 1)
        fresh: tuple[np.ndarray, ...] = (self.ring_keys, self.ring_flags, self.ring_tokens, self.ring_times,
                                         self.ring_arrived, self.ring_uprev, self.absorbed_n, self.absorbed)
        for new, previous in zip(fresh, old, strict=True):
            new[to] = previous[rows]
        self.ring_seq[to] = seqs
        self.id_sources[to] = old_sources[rows]
        self.id_rows[to] = old_rows[rows]
        if drop_dead:
            self.meta[:] = (head, tail, tail, 0)
        _refile(head, tail, drop_dead, self.ring_keys, self.ring_flags, self.ring_tokens, self.ring_uprev,
                self.table_keys, self.table_seq)


KERNELS = (sip_hashes, derive, _file, _unfile, _lookup, _refile)
"""The compiled loops (each runs as Python should numba fail to compile it: ``compiled_or_python``)."""
SCAN = 64
"""Carriers with the same usage looked at for one span, newest first (keeps a span's cost bounded when many
calls of one service have the same token counts; past it a span is priced, never lost)."""
_NO_SEQS = np.zeros(0, np.int64)
