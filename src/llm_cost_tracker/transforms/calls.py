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

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from operator import add, attrgetter, lt
from typing import Final

from llm_cost_tracker.types import DUPLICATE, SpanRecord

__all__ = ["DUPLICATE_OF", "DUPLICATE_OF_TRACE", "DUPLICATE_RULE", "CallIdentity", "CallWindow"]

DUPLICATE_OF = "llm_cost_tracker.duplicate_of"
"""Attribute of a duplicate span: the span id of the span that carries the call's cost."""
DUPLICATE_OF_TRACE = "llm_cost_tracker.duplicate_of_trace"
"""Attribute of a duplicate span: the trace id of that span (it may be in another trace)."""
DUPLICATE_RULE = "llm_cost_tracker.duplicate_rule"
"""Attribute of a duplicate span: the rule that matched (response_id, nested, overlap)."""
RESPONSE_ID = "gen_ai.response.id"
_MAX_KEY = 512  # response ids are client input: bound what is remembered
SCAN = 64
"""Carriers with the same usage looked at for one span, newest first (keeps a span's cost bounded when
many calls of one service have the same token counts; past it a span is priced, never lost)."""


@dataclass(frozen=True, slots=True)
class CallWindow:
    """Bounds of the memory of carriers.

    Args:
        max_entries: carriers remembered; the oldest is forgotten past it.
        max_age_seconds: a carrier is forgotten this long after it arrived.
    """

    max_entries: int = 100_000
    max_age_seconds: float = 300.0


_Entry = tuple["tuple[str, str]", str, int, int, str, float, "tuple[str, ...] | None", "tuple[object, ...] | None"]
"""A carrier: ((trace_id, span_id), parent_span_id, start, end, scope, arrived, response_key, usage_key).

A plain tuple rather than an object of a class: it is built in C, and the garbage collector stops
tracking it once it has survived one collection (it holds only strings, numbers and tuples of them), so
a full window (100,000 carriers, the usual state from a few hundred spans per second on) is not walked
by every later collection. Its first item is its key in ``CallIdentity._entries``, so that forgetting it
builds no key. The few carriers that absorb a span of another scope keep that in
``CallIdentity._absorbed``."""
KEY: Final = 0
PARENT: Final = 1
START: Final = 2
END: Final = 3
SCOPE: Final = 4
ARRIVED: Final = 5
RESPONSE_KEY: Final = 6
USAGE_KEY: Final = 7
_COMPACT_MIN = 1024
"""Forgotten carriers ``_order`` may hold before it is rebuilt without them (also past one per carrier)."""

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


class _Columns:
    """What call identity reads and writes of a span given as columns (:meth:`CallIdentity.file`), for the
    few it looks at closely (one whose usage another carrier has, or a duplicate): the ``SpanRecord`` fields
    :meth:`CallIdentity._by_usage_match`, ``_absorb`` and ``_mark`` touch."""

    __slots__ = ("trace_id", "span_id", "parent_span_id", "start_time_ns", "duration_ns", "scope_name", "attributes",
                 "pricing_status", "cost_pusd", "cache_savings_pusd", "reported_cost_pusd")

    def __init__(self, trace_id: str, span_id: str, parent: str, start: int, end: int, scope: str) -> None:
        self.trace_id, self.span_id, self.parent_span_id = trace_id, span_id, parent
        self.start_time_ns, self.duration_ns, self.scope_name = start, end - start, scope
        self.attributes: dict[str, str] = {}


class CallIdentity:
    """Batch stage (after the per-record transforms): marks the later spans of a call as duplicates.

    Thread-safe: Export handlers of several gRPC threads share one window.

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
        self._entries: dict[tuple[str, str], _Entry] = {}
        """(trace id, span id) -> the carrier: the window."""
        self._order: deque[_Entry] = deque()
        """The carriers in arrival order, oldest first (they leave from the front, by age or capacity), and
        those ``forget`` took out, left in place (``_dead`` of them) and passed over when they reach the
        front. A plain dict and a deque rather than an ``OrderedDict``: no linked node per carrier, and one
        probe of the dict per insertion and per removal where the ``OrderedDict`` probes its dict and its node
        table (10% less CPU for call identity with a full window, docs/performance.md)."""
        self._dead = 0
        self._by_response: dict[tuple[str, ...], _Entry] = {}
        self._by_usage: dict[tuple[object, ...], _Entry | deque[_Entry]] = {}
        """Carriers by usage key: the entry itself while it is alone (most keys: a deque costs ~400 bytes
        more, ~70 MiB in a full window), a deque once a second carrier shares its usage."""
        self._absorbed: dict[tuple[str, str], dict[str, str]] = {}
        """(trace id, span id) of a carrier -> scope -> the span of that scope matched to its call by
        ``overlap``/``nested`` (one per scope); only carriers that absorbed one are here."""

    @property
    def size(self) -> int:
        """Carriers remembered now."""
        return len(self._entries)

    def __call__(self, records: list[SpanRecord]) -> list[SpanRecord]:
        if not records:
            return records
        ordered = _in_order(records)
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._run(ordered, now)
            self._trim()
        return records

    def file(self, trace_ids: list[str], span_ids: list[str], parents: list[str], starts: list[int],
             ends: list[int], response_keys: list[tuple[str, ...] | None],
             usage_keys: list[tuple[object, ...] | None], scopes: list[str]) -> dict[int, tuple[str, str, str]]:
        """:meth:`__call__` for a request's spans given as columns (the columnar path's, ``sources/columnar.py``):
        the same steps on the same window, in the same order (by end time, then span id), each span's keys built
        by the caller as :meth:`_run` builds them. Returns, for each span found to be a duplicate, its position ->
        (the carrier's span id, its trace id, the rule), in position order: what :meth:`_mark` writes into a
        record's attributes, for the caller to write into its rows."""
        order: list[int] | range = range(len(span_ids))
        if any(later <= earlier for earlier, later in zip(ends, ends[1:], strict=False)):
            order = sorted(order, key=lambda i: (ends[i], span_ids[i]))
        marks: dict[int, tuple[str, str, str]] = {}
        with self._lock:
            now = self._clock()
            self._expire(now)
            entries, by_response, by_usage = self._entries, self._by_response, self._by_usage
            append = self._order.append
            for i in order:
                response_key, usage_key = response_keys[i], usage_keys[i]
                if usage_key is None and response_key is None:
                    continue
                key = (trace_ids[i], span_ids[i])
                entry: _Entry = (key, parents[i], starts[i], ends[i], scopes[i], now, response_key, usage_key)
                if entries.setdefault(key, entry) is not entry:
                    continue  # the same span again (a retried Export)
                span = None
                if response_key is not None:
                    named = by_response.setdefault(response_key, entry)
                    if named is not entry:
                        del entries[key]
                        span = _Columns(trace_ids[i], span_ids[i], parents[i], starts[i], ends[i], scopes[i])
                        self._mark(span, named, "response_id")  # type: ignore[arg-type]
                if span is None and usage_key is not None:
                    bucket = by_usage.setdefault(usage_key, entry)
                    if bucket is not entry:
                        span = _Columns(trace_ids[i], span_ids[i], parents[i], starts[i], ends[i], scopes[i])
                        if self._shared_usage(span, entry, usage_key, bucket):  # type: ignore[arg-type]
                            span = None  # a carrier of its own
                if span is not None:
                    a = span.attributes
                    marks[i] = (a[DUPLICATE_OF], a[DUPLICATE_OF_TRACE], a[DUPLICATE_RULE])
                    continue
                append(entry)
            self._trim()
        return dict(sorted(marks.items()))

    def forget(self, records: list[SpanRecord]) -> None:
        """The Export of ``records`` was not accepted: forget the carriers among them (the client retries
        them, or never sends them again: then a later span of their calls must carry the cost)."""
        self.forget_keys([(r.trace_id, r.span_id) for r in records])

    def forget_keys(self, keys: list[tuple[str, str]]) -> None:
        """:meth:`forget` of the spans with these (trace id, span id) (the columnar path's)."""
        with self._lock:
            for key in keys:
                e = self._entries.pop(key, None)
                if e is not None:
                    self._forget(e)
                    self._dead += 1  # still in ``_order``: passed over there
            if self._dead > _COMPACT_MIN and self._dead > len(self._entries):
                entries = self._entries
                self._order = deque(e for e in self._order if entries.get(e[KEY]) is e)
                self._dead = 0

    def _run(self, ordered: list[SpanRecord], now: float) -> None:
        """Each span in order, under the lock. The hot path: every LLM span passes here once, so the steps of
        the usual span (a new carrier) are inline and each index is probed once: ``setdefault`` finds the
        carrier or files this span as one. A span found to be a duplicate is taken out again (rare: most
        spans carry their call's cost)."""
        entries, by_response, by_usage = self._entries, self._by_response, self._by_usage
        append = self._order.append
        for r in ordered:
            rid = r.attributes.get(RESPONSE_ID)
            response_key = (r.tenant, r.provider, rid[:_MAX_KEY]) if rid else None
            u = r.usage
            usage_key: tuple[object, ...] | None = None
            if u.input_tokens or u.output_tokens:
                instance = r.resource_attributes.get("service.instance.id", "")
                usage_key = (r.tenant, r.service_name, instance[:_MAX_KEY], r.provider, u.input_tokens,
                             u.output_tokens)
            elif response_key is None:
                continue
            key = (r.trace_id, r.span_id)
            start = r.start_time_ns
            entry: _Entry = (key, r.parent_span_id, start, start + r.duration_ns, r.scope_name, now, response_key,
                             usage_key)
            if entries.setdefault(key, entry) is not entry:
                continue  # the same span again (a retried Export): span identity, not a second instrumentation
            if response_key is not None:
                named = by_response.setdefault(response_key, entry)
                if named is not entry:
                    del entries[key]
                    self._mark(r, named, "response_id")
                    continue
            if usage_key is not None:
                bucket = by_usage.setdefault(usage_key, entry)
                if bucket is not entry and not self._shared_usage(r, entry, usage_key, bucket):
                    continue  # a duplicate
            append(entry)

    def _shared_usage(self, r: SpanRecord, entry: _Entry, usage_key: tuple[object, ...],
                      bucket: _Entry | deque[_Entry]) -> bool:
        """``r`` (filed as ``entry``) shares its usage key with the carriers in ``bucket``: mark it a duplicate
        of the one it matches and take it out (False), or add it to the bucket (True: a carrier)."""
        response_key = entry[RESPONSE_KEY]
        carrier, rule = (self._by_usage_match(r, (bucket,) if isinstance(bucket, tuple) else bucket, response_key)
                         if r.scope_name else (None, ""))
        if carrier is not None:
            del self._entries[entry[KEY]]
            if response_key is not None:
                del self._by_response[response_key]
            self._mark(r, carrier, rule)
            return False
        if isinstance(bucket, tuple):
            self._by_usage[usage_key] = deque((bucket, entry))
        else:
            bucket.append(entry)
        return True

    def _by_usage_match(self, r: SpanRecord, bucket: deque[_Entry] | tuple[_Entry],
                        response_key: tuple[str, ...] | None) -> tuple[_Entry | None, str]:
        start, end = r.start_time_ns, r.start_time_ns + r.duration_ns
        absorbed = self._absorbed
        overlapping = None
        for i in range(len(bucket) - 1, max(len(bucket) - 1 - SCAN, -1), -1):
            e = bucket[i]
            if e[SCOPE] == r.scope_name:
                continue  # same instrumentation
            taken = absorbed.get(e[KEY]) if absorbed else None
            if taken is not None and taken.get(r.scope_name, r.span_id) != r.span_id:
                continue  # its span of this scope is known (a retry of it matches)
            if response_key is not None and e[RESPONSE_KEY] is not None:
                continue  # both name their response, and not the same one: two calls
            trace, span = e[KEY]
            if trace == r.trace_id and (span == r.parent_span_id or e[PARENT] == r.span_id):
                self._absorb(e, r)
                return e, "nested"
            if overlapping is None and e[START] <= end and start <= e[END]:
                overlapping = e
        if overlapping is not None:
            self._absorb(overlapping, r)
            return overlapping, "overlap"
        return None, ""

    def _absorb(self, carrier: _Entry, r: SpanRecord) -> None:
        self._absorbed.setdefault(carrier[KEY], {})[r.scope_name] = r.span_id

    def _mark(self, r: SpanRecord, carrier: _Entry, rule: str) -> None:
        r.pricing_status = DUPLICATE
        r.cost_pusd = None
        r.cache_savings_pusd = None
        r.reported_cost_pusd = None
        trace, span = carrier[KEY]
        r.attributes[DUPLICATE_OF] = span
        r.attributes[DUPLICATE_OF_TRACE] = trace
        r.attributes[DUPLICATE_RULE] = rule
        if self._on_duplicate is not None:
            self._on_duplicate(rule)

    def _forget(self, e: _Entry) -> None:
        """Take the carrier ``e`` out of the indexes (it has left the window). Each index is probed once,
        with ``pop``: an index names each carrier of the window under its keys, so what it pops is ``e``
        (or a bucket holding it); anything else is put back."""
        response_key, usage_key = e[RESPONSE_KEY], e[USAGE_KEY]
        if response_key is not None:
            held = self._by_response.pop(response_key, None)
            if held is not e and held is not None:
                self._by_response[response_key] = held
        if self._absorbed:
            self._absorbed.pop(e[KEY], None)
        if usage_key is not None:
            bucket = self._by_usage.pop(usage_key, None)
            if bucket is not e and bucket is not None:
                self._unbucket(usage_key, bucket, e)

    def _unbucket(self, usage_key: tuple[object, ...], bucket: _Entry | deque[_Entry], e: _Entry) -> None:
        """Put back ``bucket`` (popped from ``_by_usage`` under ``usage_key``) without ``e``."""
        if isinstance(bucket, deque):
            # entries leave in arrival order (age and capacity alike), so e is its bucket's oldest
            if bucket[0] is e:
                bucket.popleft()
            else:
                bucket.remove(e)
            self._by_usage[usage_key] = bucket[0] if len(bucket) == 1 else bucket
        else:
            self._by_usage[usage_key] = bucket

    def _expire(self, now: float) -> None:
        n = self._evict(now - self.window.max_age_seconds, len(self._entries))
        if n and self._on_evict is not None:
            self._on_evict("age", n)

    def _trim(self) -> None:
        excess = len(self._entries) - self.window.max_entries
        if excess <= 0:
            return
        self._evict(None, excess)
        if self._on_evict is not None:
            self._on_evict("capacity", excess)

    def _evict(self, limit: float | None, most: int) -> int:
        """Forget the oldest carriers: up to ``most`` of them, those that arrived by ``limit`` when one is
        given; how many were forgotten. Carriers ``forget`` took out are passed over. Inline for the usual
        carrier (alone under its keys): once the window is full, one leaves per span that arrives."""
        order, entries, by_response, by_usage = self._order, self._entries, self._by_response, self._by_usage
        popleft = order.popleft
        n = 0
        while n < most and order:
            e = order[0]
            if limit is not None and e[ARRIVED] > limit and (not self._dead or entries.get(e[KEY]) is e):
                break
            popleft()
            key = e[KEY]
            held = entries.pop(key, None)
            if held is not e:  # taken out by ``forget`` (and perhaps filed again since, as a new carrier)
                if held is not None:
                    entries[key] = held
                self._dead -= 1
                continue
            n += 1
            response_key, usage_key = e[RESPONSE_KEY], e[USAGE_KEY]
            if response_key is not None:
                named = by_response.pop(response_key, None)
                if named is not e and named is not None:
                    by_response[response_key] = named
            if self._absorbed:
                self._absorbed.pop(key, None)
            if usage_key is not None:
                bucket = by_usage.pop(usage_key, None)
                if bucket is not e and bucket is not None:
                    self._unbucket(usage_key, bucket, e)
        return n
