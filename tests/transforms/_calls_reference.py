"""Call identity as it was before its window became a dict and a deque (commit 3ad7ca4), kept unchanged as
the reference ``test_calls_reference.py`` compares ``transforms/calls.py`` with: the same marks, evictions and
indexes on every generated sequence of requests.

The original docstring follows.

Call identity: one provider call seen by several instrumentations is priced once.

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
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
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


_Entry = tuple[str, str, str, int, int, str, float, "tuple[str, ...] | None", "tuple[object, ...] | None"]
"""A carrier: (trace_id, span_id, parent_span_id, start, end, scope, arrived, response_key, usage_key).

A plain tuple rather than an object of a class: it is built in C, and the garbage collector stops
tracking it once it has survived one collection (it holds only strings, numbers and tuples of them), so
a full window (100,000 carriers, the usual state from a few hundred spans per second on) is not walked
by every later collection. The few carriers that absorb a span of another scope keep that in
``CallIdentity._absorbed``."""
TRACE: Final = 0
SPAN: Final = 1
PARENT: Final = 2
START: Final = 3
END: Final = 4
SCOPE: Final = 5
ARRIVED: Final = 6
RESPONSE_KEY: Final = 7
USAGE_KEY: Final = 8


def _end(r: SpanRecord) -> tuple[int, str]:
    return r.start_time_ns + r.duration_ns, r.span_id


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
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
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
        ordered = sorted(records, key=_end) if len(records) > 1 else records
        with self._lock:
            now = self._clock()
            self._expire(now)
            for r in ordered:
                self._one(r, now)
            self._trim()
        return records

    def forget(self, records: list[SpanRecord]) -> None:
        """The Export of ``records`` was not accepted: forget the carriers among them (the client retries
        them, or never sends them again: then a later span of their calls must carry the cost)."""
        with self._lock:
            for r in records:
                e = self._entries.pop((r.trace_id, r.span_id), None)
                if e is not None:
                    self._forget(e)

    def _one(self, r: SpanRecord, now: float) -> None:
        """One span, under the lock. The hot path: every LLM span passes here once (keys built inline)."""
        rid = r.attributes.get(RESPONSE_ID)
        response_key = (r.tenant, r.provider, rid[:_MAX_KEY]) if rid else None
        u = r.usage
        usage_key: tuple[object, ...] | None = None
        if u.input_tokens or u.output_tokens:
            instance = r.resource_attributes.get("service.instance.id", "")
            usage_key = (r.tenant, r.service_name, instance[:_MAX_KEY], r.provider, u.input_tokens, u.output_tokens)
        elif response_key is None:
            return
        key = (r.trace_id, r.span_id)
        entry: _Entry = (r.trace_id, r.span_id, r.parent_span_id, r.start_time_ns, r.start_time_ns + r.duration_ns,
                          r.scope_name, now, response_key, usage_key)
        entries = self._entries
        if entries.setdefault(key, entry) is not entry:
            return  # the same span again (a retried Export): span identity, not a second instrumentation
        # Each index is probed once: ``setdefault`` finds the carrier or files this span as one. A span found
        # to be a duplicate is taken out again (rare: most spans carry their call's cost).
        if response_key is not None:
            named = self._by_response.setdefault(response_key, entry)
            if named is not entry:
                del entries[key]
                self._mark(r, named, "response_id")
                return
        if usage_key is not None:
            bucket = self._by_usage.setdefault(usage_key, entry)
            if bucket is entry:
                return
            carrier, rule = (self._by_usage_match(r, (bucket,) if isinstance(bucket, tuple) else bucket, response_key)
                             if r.scope_name else (None, ""))
            if carrier is not None:
                del entries[key]
                if response_key is not None:
                    del self._by_response[response_key]
                self._mark(r, carrier, rule)
            elif isinstance(bucket, tuple):
                self._by_usage[usage_key] = deque((bucket, entry))
            else:
                bucket.append(entry)

    def _by_usage_match(self, r: SpanRecord, bucket: deque[_Entry] | tuple[_Entry],
                        response_key: tuple[str, ...] | None) -> tuple[_Entry | None, str]:
        start, end = r.start_time_ns, r.start_time_ns + r.duration_ns
        absorbed = self._absorbed
        overlapping = None
        for i in range(len(bucket) - 1, max(len(bucket) - 1 - SCAN, -1), -1):
            e = bucket[i]
            if e[SCOPE] == r.scope_name:
                continue  # same instrumentation
            taken = absorbed.get((e[TRACE], e[SPAN])) if absorbed else None
            if taken is not None and taken.get(r.scope_name, r.span_id) != r.span_id:
                continue  # its span of this scope is known (a retry of it matches)
            if response_key is not None and e[RESPONSE_KEY] is not None:
                continue  # both name their response, and not the same one: two calls
            if e[TRACE] == r.trace_id and (e[SPAN] == r.parent_span_id or e[PARENT] == r.span_id):
                self._absorb(e, r)
                return e, "nested"
            if overlapping is None and e[START] <= end and start <= e[END]:
                overlapping = e
        if overlapping is not None:
            self._absorb(overlapping, r)
            return overlapping, "overlap"
        return None, ""

    def _absorb(self, carrier: _Entry, r: SpanRecord) -> None:
        self._absorbed.setdefault((carrier[TRACE], carrier[SPAN]), {})[r.scope_name] = r.span_id

    def _mark(self, r: SpanRecord, carrier: _Entry, rule: str) -> None:
        r.pricing_status = DUPLICATE
        r.cost_pusd = None
        r.cache_savings_pusd = None
        r.reported_cost_pusd = None
        r.attributes[DUPLICATE_OF] = carrier[SPAN]
        r.attributes[DUPLICATE_OF_TRACE] = carrier[TRACE]
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
            self._absorbed.pop((e[TRACE], e[SPAN]), None)
        if usage_key is not None:
            bucket = self._by_usage.pop(usage_key, None)
            if isinstance(bucket, deque):
                # entries leave in arrival order (age and capacity alike), so e is its bucket's oldest
                if bucket[0] is e:
                    bucket.popleft()
                else:
                    bucket.remove(e)
                self._by_usage[usage_key] = bucket[0] if len(bucket) == 1 else bucket
            elif bucket is not e and bucket is not None:
                self._by_usage[usage_key] = bucket

    def _expire(self, now: float) -> None:
        limit = now - self.window.max_age_seconds
        n = 0
        while self._entries:
            key, e = next(iter(self._entries.items()))
            if e[ARRIVED] > limit:
                break
            del self._entries[key]
            self._forget(e)
            n += 1
        if n and self._on_evict is not None:
            self._on_evict("age", n)

    def _trim(self) -> None:
        excess = len(self._entries) - self.window.max_entries
        if excess <= 0:
            return
        pop, forget = self._entries.popitem, self._forget
        for _ in range(excess):
            forget(pop(last=False)[1])
        if self._on_evict is not None:
            self._on_evict("capacity", excess)
