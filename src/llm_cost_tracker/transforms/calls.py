"""Call identity: one provider call seen by several instrumentations is priced once.

Two instrumentations on one call (the anthropic SDK's own span beside OpenLLMetry's or inside
OpenInference's; LangChain's LLM span beside the OpenAI instrumentation's) each send a span with the
call's usage. The first span of a call to arrive carries the cost; every later one is kept as a row
with ``pricing_status = 'duplicate'``, ``cost_pusd`` None and ``llm_cost_tracker.duplicate_of`` naming
the carrier's span id, so nothing disappears and every total counts the call once.

Two spans are the same call when (rules, tried in this order):

- ``response_id``: they name the same provider response (tenant, provider, ``gen_ai.response.id``);
- ``nested``: one is the other's parent or child, from another instrumentation scope, with the same
  input and output token counts (and not both naming a response: those are told apart by it);
- ``overlap``: from another instrumentation scope of the same service instance, with the same
  provider and token counts, their time intervals overlap, and the carrier has not yet absorbed a span
  of that scope (one to one, so two identical concurrent calls are still counted twice).

Which span carries the cost: within one Export the span that ended first (then the smaller span id);
across Exports the one that arrived first, which is the same span for a producer with one span
processor (spans are exported in the order they end). The spans of one call may arrive in separate
Exports, so carriers are remembered in a window bounded in entries and age; what falls out of it is
counted (``llm_call_window_evictions_total``), and a span arriving after its carrier left is priced.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, islice
from operator import add, attrgetter, lt
from typing import Any

import numpy as np

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.transforms._call_window import (
    CALL_KEYS,
    CALL_PARTS,
    HAS_RESPONSE,
    HAS_SCOPE,
    HAS_USAGE,
    INSTANCE,
    KERNELS,
    PARENT,
    PROVIDER,
    RESPONSE,
    RULES,
    SCOPE,
    SERVICE,
    SPAN,
    TENANT,
    TRACE,
    HexIds,
    IdLists,
    SpanIds,
    WindowArrays,
    derive,
    sip_hashes,
)
from llm_cost_tracker.types import DUPLICATE, SpanRecord

__all__ = ["DUPLICATE_OF", "DUPLICATE_OF_TRACE", "DUPLICATE_RULE", "CallColumns", "CallIdentity", "CallWindow", "HexIds",
           "Pooled", "SpanIds", "call_columns", "fixed_ends", "hex_hashes", "string_hashes", "warm_up"]

DUPLICATE_OF = "llm_cost_tracker.duplicate_of"
"""Attribute of a duplicate span: the span id of the span that carries the call's cost."""
DUPLICATE_OF_TRACE = "llm_cost_tracker.duplicate_of_trace"
"""Attribute of a duplicate span: the trace id of that span (it may be in another trace)."""
DUPLICATE_RULE = "llm_cost_tracker.duplicate_rule"
"""Attribute of a duplicate span: the rule that matched (response_id, nested, overlap)."""
RESPONSE_ID = "gen_ai.response.id"
_MAX_KEY = 512  # response ids are client input: bound what is remembered
log = get_logger("transforms")
_COMPACT_MIN = 1024
"""Forgotten carriers the window may hold before it is laid out again without them (also past one per carrier)."""
_NO_ENDS = np.zeros(0, np.int64)
_KEYS = np.frombuffer(os.urandom(32), np.uint64).copy()
"""The two 128-bit keys of the strings' hashes (:func:`~._call_window.sip_hashes`), drawn per process."""
_SPARE_ROWS = 1024
"""Rows the window's ring has beyond ``max_entries`` to start with (a request's new carriers, before the oldest
leave; it grows when a request needs more)."""
_INSTANCE = "service.instance.id"
_U64_MAX = 2**64 - 1
_VALUES = 9
"""What ``CallIdentity._columns`` reads of each record, in order: trace, span and parent ids, response id, input
and output tokens, start and end, the number of its origin (tenant, provider, service, instance, scope)."""


@dataclass(frozen=True, slots=True)
class CallWindow:
    """Bounds of the memory of carriers.

    Args:
        max_entries: carriers remembered; the oldest is forgotten past it.
        max_age_seconds: a carrier is forgotten this long after it arrived.
    """

    max_entries: int = 100_000
    max_age_seconds: float = 300.0


_starts = attrgetter("start_time_ns")
_durations = attrgetter("duration_ns")


def _end(r: SpanRecord) -> tuple[int, str]:
    return r.start_time_ns + r.duration_ns, r.span_id


def _in_order(records: list[SpanRecord]) -> list[SpanRecord]:
    """``records`` by (end, span id): themselves when their ends strictly increase (spans are exported in
    the order they end, so most requests are), checked in C without a key tuple per span."""
    if len(records) < 2:
        return records
    ends = list(map(add, map(_starts, records), map(_durations, records)))
    if all(map(lt, ends, islice(ends, 1, None))):
        return records
    return sorted(records, key=_end)


def string_hashes(strings: list[str]) -> np.ndarray:
    """Two independent 64-bit hashes of each of ``strings`` (rows 0 and 1, as uint64): :func:`~._call_window.sip_hashes`
    of their UTF-8 bytes, laid end to end in one buffer (one compiled walk)."""
    hashes = np.empty((2, len(strings)), np.uint64)
    joined = "\x00".join(strings)
    if joined.count("\x00") == len(strings) - 1:  # (the usual case) the separators tell the strings apart
        ends = _NO_ENDS
        text = joined.encode("utf-8", "surrogatepass")
    else:
        encoded = [v.encode("utf-8", "surrogatepass") for v in strings]
        ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
        text = b"".join(encoded)
    sip_hashes(np.frombuffer(text, np.uint8), ends, _KEYS, hashes)
    return hashes


def hex_hashes(text: str, ends: np.ndarray) -> np.ndarray:
    """:func:`string_hashes` of the ids laid end to end in the hex ``text``, the k-th ending at character ``ends[k]``
    (a request's trace, span or parent ids, as the columnar path has them), without a string per id."""
    hashes = np.empty((2, len(ends)), np.uint64)
    sip_hashes(np.frombuffer(text.encode("ascii"), np.uint8), ends.astype(np.int64, copy=False), _KEYS, hashes)
    return hashes


def fixed_ends(n: int, width: int) -> np.ndarray:
    """The ends of ``n`` ids of ``width`` characters each laid end to end (:func:`hex_hashes`)."""
    return np.arange(width, (n + 1) * width, width, dtype=np.int64)


def _span_keys(trace_ids: list[str], span_ids: list[str]) -> np.ndarray:
    """The keys of the spans with these ids (only their ``K`` columns are meant: trace and span ids)."""
    n = len(span_ids)
    hashes = string_hashes(trace_ids + span_ids)
    parts = np.zeros((n, CALL_PARTS), np.uint64)
    parts[:, [TRACE, TRACE + 1]] = hashes[:, :n].T
    parts[:, [SPAN, SPAN + 1]] = hashes[:, n:].T
    keys = np.empty((n, CALL_KEYS), np.uint64)
    derive(parts, np.zeros((n, 2), np.int64), keys)
    return keys


Pooled = tuple[list[str], np.ndarray]
"""Strings a request has few of, as its distinct ones and, per span, the index of its own among them."""


@dataclass(frozen=True, slots=True)
class CallColumns:
    """A request's spans as call identity reads them, hashed and derived into the window's keys: what
    :meth:`CallIdentity.file` decides. Built by :func:`call_columns` from columns (the columnar path's,
    ``sources/columnar.py``), as :meth:`CallIdentity.__call__` builds it from records; pure, so it is built
    before the window's lock is taken."""

    ids: SpanIds
    """The spans' (trace id, span id), read when one of them is found to carry a call another span duplicates."""
    order: np.ndarray | None
    """The spans in the order they are decided (by end, then span id), or None: as given (their ends increase)."""
    keys: np.ndarray
    flags: np.ndarray
    tokens: np.ndarray
    times: np.ndarray


def call_columns(ids: SpanIds, id_hashes: np.ndarray, starts: np.ndarray, ends: np.ndarray, inputs: np.ndarray,
                 outputs: np.ndarray, responses: Pooled, tenants: Pooled, providers: Pooled, services: Pooled,
                 instances: Pooled, scopes: Pooled, in_order: bool = False) -> CallColumns:
    """The request's spans for :meth:`CallIdentity.file`: their ids and the hashes of their trace, span and parent
    span ids (``id_hashes[:, 0..2]``, :func:`string_hashes` or :func:`hex_hashes` of each; a parent of "" for
    none), per span its start and end (ns, uint64 or int64 within it), input and output token counts, and, pooled,
    its response id ("": none), tenant, provider, service, ``service.instance.id`` ("": none) and instrumentation
    scope. The same keys as :meth:`CallIdentity.__call__` reads of a record with these values
    (``tests/transforms/test_calls.py``; ``tests/sources/test_columnar.py`` runs both paths over one window).
    ``in_order``: the spans are in decision order already (the caller sorted them)."""
    n = len(starts)
    order: np.ndarray | None = None
    if n > 1 and not in_order and not bool((ends[1:] > ends[:-1]).all()):
        order = np.asarray(sorted(range(n), key=lambda i: (int(ends[i]), ids.pair(i)[1])), np.int64)
    parts = np.empty((n, CALL_PARTS), np.uint64)
    for k, column in enumerate((TRACE, SPAN, PARENT)):
        parts[:, column] = id_hashes[0, k]
        parts[:, column + 1] = id_hashes[1, k]
    pools = (responses, tenants, providers, services, instances, scopes)
    bounded = [[s[:_MAX_KEY] for s in pool] for pool, _ in pools]
    hashes = string_hashes(list(chain.from_iterable(bounded)))
    at = 0
    for (pool, index), column in zip(pools, (RESPONSE, TENANT, PROVIDER, SERVICE, INSTANCE, SCOPE), strict=True):
        parts[:, column] = hashes[0, at:at + len(pool)][index]
        parts[:, column + 1] = hashes[1, at:at + len(pool)][index]
        at += len(pool)
    tokens = np.empty((n, 2), np.int64)
    tokens[:, 0], tokens[:, 1] = inputs, outputs
    times = np.empty((n, 2), np.uint64)
    times[:, 0], times[:, 1] = starts, ends
    named = np.fromiter(map(bool, responses[0]), bool, len(responses[0]))[responses[1]]
    scoped = np.fromiter(map(bool, scopes[0]), bool, len(scopes[0]))[scopes[1]]
    flags = (np.where(named, HAS_RESPONSE, 0) | np.where((inputs != 0) | (outputs != 0), HAS_USAGE, 0)
             | np.where(scoped, HAS_SCOPE, 0)).astype(np.int8)
    if order is not None:
        parts, tokens, times, flags = parts[order], tokens[order], times[order], flags[order]
    keys = np.empty((n, CALL_KEYS), np.uint64)
    derive(parts, tokens, keys)
    return CallColumns(ids, order, keys, flags, tokens, times)


class CallIdentity:
    """Batch stage (after the per-record transforms): marks the later spans of a call as duplicates.

    The window is :class:`~._call_window.WindowArrays`: each request's keys are hashed outside the lock (from
    records here, from columns by :func:`call_columns`) and decided in one compiled call. Thread-safe: Export
    handlers of several gRPC threads share one window.

    Args:
        window: memory bounds.
        on_duplicate: told the rule of each duplicate found (a metric).
        on_evict: told why each carrier was forgotten: ``capacity`` or ``age`` (a metric).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, window: CallWindow = CallWindow(), on_duplicate: Callable[[str], None] | None = None,
                 on_evict: Callable[[str, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._on_duplicate = on_duplicate
        self._on_evict = on_evict
        self._clock = clock
        self._lock = threading.Lock()
        self._carriers = WindowArrays(min(window.max_entries, 1 << 20) + _SPARE_ROWS)
        """The window (a ring of ``max_entries`` and a request's rows, up to ~1M to start with: it grows)."""

    @property
    def size(self) -> int:
        """Carriers remembered now."""
        return self._carriers.live

    def __call__(self, records: list[SpanRecord]) -> list[SpanRecord]:
        if not records:
            return records
        ordered = _in_order(records)
        spans = self._columns(ordered)
        for j, (carrier, rule) in self._decide(spans).items():
            self._mark(ordered[j], carrier, rule)
        return records

    def file(self, spans: CallColumns) -> dict[int, tuple[str, str, str]]:
        """:meth:`__call__` for a request's spans given as columns (:func:`call_columns`): the same steps on the
        same window, in the same order. Returns, for each span found to be a duplicate, its position -> (the
        carrier's span id, its trace id, the rule), in position order: what :meth:`_mark` writes into a record's
        attributes, for the caller to write into its rows."""
        order = spans.order
        marks: dict[int, tuple[str, str, str]] = {}
        for j, ((trace, span), rule) in self._decide(spans).items():
            marks[j if order is None else int(order[j])] = (span, trace, rule)
        return dict(sorted(marks.items())) if order is not None else marks

    def forget(self, records: list[SpanRecord]) -> None:
        """The Export of ``records`` was not accepted: forget the carriers among them (the client retries
        them, or never sends them again: then a later span of their calls must carry the cost)."""
        self.forget_keys([(r.trace_id, r.span_id) for r in records])

    def forget_keys(self, keys: list[tuple[str, str]]) -> None:
        """:meth:`forget` of the spans with these (trace id, span id) (the columnar path's)."""
        if not keys:
            return
        hashed = _span_keys([k[0] for k in keys], [k[1] for k in keys])
        with self._lock:
            self._carriers.forget(hashed, _COMPACT_MIN)

    def _decide(self, spans: CallColumns) -> dict[int, tuple[tuple[str, str], str]]:
        """Decide the spans (in ``spans.order``) under the lock: age out, file, name the new carriers, trim.
        Returns each duplicate's position in decision order -> (its carrier's (trace id, span id), the rule), each
        rule told to ``on_duplicate``."""
        order = spans.order
        with self._lock:
            now = self._clock()
            carriers = self._carriers
            evicted = carriers.evict(now - self.window.max_age_seconds, carriers.live)
            if evicted and self._on_evict is not None:
                self._on_evict("age", evicted)
            duplicates, rules, filed = carriers.file(spans.keys, spans.flags, spans.tokens, spans.times, now)
            rows = np.flatnonzero(filed >= 0)
            if len(rows):
                carriers.name(filed[rows], spans.ids, rows if order is None else order[rows])
            found = {j: (carriers.carrier_ids(int(duplicates[j])), RULES[rules[j]])
                     for j in np.flatnonzero(duplicates >= 0).tolist()}
            if self._on_duplicate is not None:
                for _, rule in found.values():
                    self._on_duplicate(rule)  # (before the window is trimmed, as the callbacks were always told)
            excess = carriers.live - self.window.max_entries
            if excess > 0:
                carriers.evict(np.nan, excess)
                if self._on_evict is not None:
                    self._on_evict("capacity", excess)
        return found

    @staticmethod
    def _columns(ordered: list[SpanRecord]) -> CallColumns:
        """What :meth:`_decide` reads of records in decision order: their columns, one Python loop over them
        (CPython's specialised attribute loads: ~0.1 us a span), then :func:`call_columns` over the request."""
        values: list[Any] = []  # (strings and ints, nine per span: read back by slicing)
        add_values = values.extend
        origins: dict[tuple[str, str, str, str, str], int] = {}
        origin_of = origins.setdefault
        for r in ordered:
            rid = r.attributes.get(RESPONSE_ID)
            u = r.usage
            start = r.start_time_ns
            add_values((r.trace_id, r.span_id, r.parent_span_id, rid or "", u.input_tokens, u.output_tokens, start,
                        start + r.duration_ns,
                        origin_of((r.tenant, r.provider, r.service_name, r.resource_attributes.get(_INSTANCE, ""),
                                   r.scope_name), len(origins))))
        n = len(ordered)
        w = _VALUES
        responses: dict[str, int] = {}
        response_of = np.fromiter(map(lambda v: responses.setdefault(v, len(responses)), values[3::w]),  # noqa: C417
                                  np.int64, n)
        origin_ix = np.fromiter(values[8::w], np.int64, n)
        distinct = list(zip(*origins, strict=True)) if origins else [(), (), (), (), ()]
        tenants, providers, services, instances, scopes = ((list(d), origin_ix) for d in distinct)
        starts, ends = values[6::w], values[7::w]
        try:
            start_arr = np.fromiter(starts, np.uint64, n)
            end_arr = np.fromiter(ends, np.uint64, n)
        except OverflowError:  # a time past 2**64 ns (not from a decoder): compared as the largest one
            start_arr = np.fromiter((min(max(t, 0), _U64_MAX) for t in starts), np.uint64, n)
            end_arr = np.fromiter((min(max(t, 0), _U64_MAX) for t in ends), np.uint64, n)
        traces, spans = values[0::w], values[1::w]
        return call_columns(IdLists(traces, spans), string_hashes(traces + spans + values[2::w]).reshape(2, 3, n),
                            start_arr, end_arr, np.fromiter(values[4::w], np.int64, n),
                            np.fromiter(values[5::w], np.int64, n), (list(responses), response_of), tenants, providers,
                            services, instances, scopes, in_order=True)

    def _mark(self, r: SpanRecord, carrier: tuple[str, str], rule: str) -> None:
        r.pricing_status = DUPLICATE
        r.cost_pusd = None
        r.cache_savings_pusd = None
        r.reported_cost_pusd = None
        trace, span = carrier
        r.attributes[DUPLICATE_OF] = span
        r.attributes[DUPLICATE_OF_TRACE] = trace
        r.attributes[DUPLICATE_RULE] = rule


def warm_up() -> None:
    """Load (or compile) the window's compiled code now, not on the first Export: ~0.2 s from numba's cache, ~3-5 s
    without one. Run on a thread at start (an Export that comes sooner waits for it). Every kernel is run once, and
    the ring is made to grow and to be laid out. A loop numba cannot compile runs as Python: logged here."""
    calls = CallIdentity(CallWindow(max_entries=1))
    n = calls._carriers.capacity + 1  # (more than the ring's first rows: it grows)
    one = np.zeros(n, np.int64)
    traces, span_ids = "".join(f"{i:032x}" for i in range(n)), "".join(f"{i:016x}" for i in range(n))
    hashes = np.stack((hex_hashes(traces, fixed_ends(n, 32)), hex_hashes(span_ids, fixed_ends(n, 16)),
                       string_hashes(["é"] * n)), axis=1)
    spans = call_columns(HexIds(traces, span_ids), hashes, np.arange(n), np.arange(n), one + 1, one + 1, ([""], one),
                         ([""], one), (["openai"], one), (["svc"], one), ([""], one), (["scope"], one))
    calls.file(spans)
    calls.forget_keys(spans.ids.pairs())
    failed = {kernel.py_func.__name__: kernel.error for kernel in KERNELS if kernel.error}
    if failed:
        log.error("call identity's window could not be compiled; its loops run as Python, far slower",
                  loops=sorted(failed), error=next(iter(failed.values())))
