"""The writer's accounting fast paths against the plain per-record code they replace.

Spend metrics: ``SpendCollector.observe_records`` (summed per group) against ``observe_rows(spend_rows(...))``
(a tuple per record, the Kafka path's). The budgets' ledger: ``SpendLedger.aggregate`` against the per-record
loop it was, and ``TrackingQueue`` (the publish aggregate carried to commit by the in-process queue, split
requests aggregated again) against the ledger's invariant. Span identity: ``time_ranges`` against its
``np.unique`` form, and the first-arrival decision against the per-key loop.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_cost_tracker import metrics as metrics_module
from llm_cost_tracker.access.cardinality import LabelFolder
from llm_cost_tracker.budgets import SpendLedger, TrackingQueue
from llm_cost_tracker.budgets._ledger import BUCKET_NS, Aggregate, _Published
from llm_cost_tracker.metrics import MISSING_ATTRIBUTE, SpendCollector
from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.memory import MemoryQueue, Part
from llm_cost_tracker.sinks import identity
from llm_cost_tracker.sinks.identity import FirstArrivals, Key, spend_rows, time_ranges, token_hash
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import DUPLICATE, NO_USAGE, PRICED, UNPRICED, SpanRecord, TokenUsage

_ids = itertools.count(1)
STATUSES = [PRICED, PRICED, "partial", UNPRICED, NO_USAGE, DUPLICATE, "odd"]
T0 = 1_750_000_000 * 10**9
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def spans(draw: Any) -> SpanRecord:
    """A span of few enough label values that groups repeat, with every status, cost and usage shape."""
    i = next(_ids)
    status = draw(st.sampled_from(STATUSES))
    cost = draw(st.one_of(st.none(), st.just(0), st.integers(1, 10**13), st.integers(2**63, 2**70)))
    reported = draw(st.one_of(st.none(), st.none(), st.just(0), st.integers(0, 10**13)))
    attributes: dict[str, str] = {}
    if draw(st.booleans()):
        attributes[MISSING_ATTRIBUTE] = draw(st.sampled_from(["", "audio", "image,audio"]))
    if draw(st.booleans()):
        attributes["team"] = draw(st.sampled_from(["", "a", "b"]))
    if draw(st.booleans()):
        attributes["user.id"] = draw(st.sampled_from(["", "u1", "u2"]))
    resource = {"user.id": "r1"} if draw(st.booleans()) else {}
    tokens = draw(st.lists(st.one_of(st.integers(0, 5000), st.integers(2**62, 2**66)), min_size=5, max_size=5))
    return span_record(
        trace_id=draw(st.sampled_from([f"{i:032x}", "t" * 32])), span_id=draw(st.sampled_from([f"{i:016x}", "s" * 16])),
        start_time_ns=T0 + draw(st.integers(0, 3)) * BUCKET_NS + draw(st.integers(0, BUCKET_NS - 1)),
        service_name=draw(st.sampled_from(["svc-a", "svc-b", "svc-c"])), tenant=draw(st.sampled_from(["", "t1", "t2"])),
        provider=draw(st.sampled_from(["openai", "anthropic", ""])),
        request_model=draw(st.sampled_from(["m1", "m2", "m3", ""])),
        response_model=draw(st.sampled_from(["", "", "m1", "m4", "m5"])),
        usage=TokenUsage(*tokens), cost_pusd=cost, pricing_status=status, reported_cost_pusd=reported,
        attributes=attributes, resource_attributes=resource)


def families(collector: SpendCollector) -> tuple[Any, ...]:
    """Everything a collector holds, in order (the order decides which labels fold when a cap is reached)."""
    return (list(collector._cost.items()), list(collector._tokens.items()), list(collector._unpriced.items()),
            list(collector._disagree.items()), collector.folder.folded)


@SLOW
@given(batches=st.lists(st.lists(spans(), max_size=30), min_size=1, max_size=4), limit=st.integers(1, 4),
       series=st.integers(1, 8))
def test_observe_records_counts_as_the_rows_do(batches: list[list[SpanRecord]], limit: int, series: int) -> None:
    """Label for label, count for count and in the same order, past the folding and series caps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_module, "MAX_SERIES", series)
        fast = SpendCollector(LabelFolder(default_limit=limit, global_limit=limit + 2))
        plain = SpendCollector(LabelFolder(default_limit=limit, global_limit=limit + 2))
        for batch in batches:
            fast.observe_records(batch)
            plain.observe_rows(spend_rows(batch))
            assert families(fast) == families(plain)
    assert [(m.name, m.samples) for m in fast.collect()] == [(m.name, m.samples) for m in plain.collect()]


def test_observe_records_on_a_known_batch() -> None:
    """Fixed expectations, so that a fault shared by both paths still fails."""
    usage = TokenUsage(10, 5, 2, 1, 3)
    records = [
        span_record(tenant="t", service_name="s", provider="p", response_model="m", usage=usage, cost_pusd=7),
        span_record(tenant="t", service_name="s", provider="p", request_model="m", usage=usage, cost_pusd=5,
                    pricing_status="partial", attributes={MISSING_ATTRIBUTE: "audio"}),
        span_record(tenant="t", service_name="s", provider="p", response_model="m", usage=usage, cost_pusd=None),
        span_record(tenant="t", service_name="s", provider="p", response_model="m", usage=usage, cost_pusd=None,
                    pricing_status=NO_USAGE),
        span_record(tenant="t", service_name="s", provider="p", response_model="m", usage=usage, cost_pusd=None,
                    pricing_status=DUPLICATE),
        span_record(tenant="t", service_name="s", provider="p", response_model="m", usage=usage, cost_pusd=100,
                    reported_cost_pusd=200),
    ]
    collector = SpendCollector()
    collector.observe_records(records)
    assert collector._cost == {("s", "p", "m"): 112}
    assert collector._tokens == {("s", "p", "m"): [50, 25, 10, 5, 15]}
    assert collector._unpriced == {("p", "m", "missing:audio"): 1, ("p", "m", "unknown_model"): 1,
                                   ("p", "m", "no_usage"): 1}
    assert collector._disagree == {("p", "m"): 1}


def reference_aggregate(ledger: SpendLedger, records: Iterable[SpanRecord]) -> Aggregate:
    """``SpendLedger.aggregate`` as a plain per-record loop (the code before its fast path)."""
    out: Aggregate = {}
    keys, entity_keys = ledger.attribute_keys, ledger.entity_keys
    for r in records:
        cost = r.cost_pusd
        if not cost:
            continue
        attrs = tuple(r.attributes.get(k, "") for k in keys) if keys else ()
        if entity_keys:
            attrs += tuple(r.attributes.get(k) or r.resource_attributes.get(k, "") for k in entity_keys)
        key = ((r.tenant, r.service_name, r.provider, r.response_model or r.request_model, attrs),
               r.start_time_ns // BUCKET_NS)
        out[key] = out.get(key, 0) + cost
    return out


@SLOW
@given(records=st.lists(spans(), max_size=40), keys=st.sampled_from([(), ("team",), ("team", "user.id")]),
       entity_keys=st.sampled_from([(), ("user.id",), ("team", "user.id")]))
def test_aggregate_as_the_plain_loop(records: list[SpanRecord], keys: tuple[str, ...],
                                     entity_keys: tuple[str, ...]) -> None:
    ledger = SpendLedger(keys, entity_keys)
    assert list(ledger.aggregate(records).items()) == list(reference_aggregate(ledger, records).items())


@SLOW
@given(requests=st.lists(st.lists(spans(), min_size=1, max_size=12), min_size=1, max_size=8),
       takes=st.lists(st.integers(1, 15), min_size=8, max_size=8), extend_at=st.integers(0, 12),
       data=st.data())
def test_tracking_queue_takes_out_what_publish_added(requests: list[list[SpanRecord]], takes: list[int],
                                                     extend_at: int, data: Any) -> None:
    """Publish, take (splitting requests bigger than a batch) and commit in a random interleaving, with budget
    keys added at some step: at every step the pending spend is the uncommitted spans' costs, per entry while
    the keys are unchanged, in total across a change; once everything is committed nothing is left pending,
    also where a request was split across the change (each part is aggregated with the request's keys)."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(10_000), ledger)
    pending: list[SpanRecord] = []
    published = iter(requests)
    takes_left = iter(takes * 4)
    extended = False
    step = 0
    while True:
        step += 1
        if step == extend_at:
            ledger.extend_keys(("team",), ("user.id",))
            extended = True
        if data.draw(st.booleans()) and (records := next(published, None)) is not None:
            queue.publish(records)
            pending.extend(records)
        elif queue.depth:
            size = next(takes_left, 15)
            batch = queue.take(size, 0.0)
            assert batch is not None
            queue.commit(batch)
            del pending[:len(batch.records)]
        elif next(published, None) is None:
            break
        else:  # the request drawn by next() above is published now
            continue
        total = sum(r.cost_pusd or 0 for r in pending)
        assert sum(ledger.snapshot().values()) == total
        if not extended:
            assert ledger.snapshot() == {k: v for k, v in reference_aggregate(ledger, pending).items() if v}
    assert queue.depth == 0
    assert not pending or sum(r.cost_pusd or 0 for r in pending) == 0
    assert ledger.snapshot() == {}


def test_budget_keys_added_between_publish_and_commit_leave_nothing_pending() -> None:
    """Commit takes out the entries publish added (re-shaped alike), not the batch aggregated with the new keys:
    aggregating again left +cost under ("a", "") and -cost under ("a", "x") for good."""
    ledger = SpendLedger(("team",))
    queue = TrackingQueue(MemoryQueue(10), ledger)
    queue.publish([span_record(cost_pusd=5, attributes={"team": "a", "user.id": "x"})])
    ledger.extend_keys(("team",), ("user.id",))
    assert [dims[4] for dims, _ in ledger.snapshot()] == [("a", "")]
    batch = queue.take(10, 0.0)
    assert batch is not None
    queue.commit(batch)
    assert ledger.snapshot() == {}


def test_a_request_split_across_batches_is_taken_out_in_parts() -> None:
    """A request bigger than a batch carries its whole aggregate into each part (a ``Part``), which does not describe
    the part: each part is aggregated at commit."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(100), ledger)
    queue.publish([span_record(cost_pusd=c, start_time_ns=T0 + c * BUCKET_NS) for c in (1, 2, 3, 4, 5)])
    queue.publish([span_record(cost_pusd=10)])
    first = queue.take(3, 0.0)
    assert first is not None and [(n, type(c)) for n, c in MemoryQueue.carried(first)] == [(3, Part)]
    queue.commit(first)
    assert sum(ledger.snapshot().values()) == 4 + 5 + 10
    second = queue.take(10, 0.0)
    assert second is not None and [n for n, _ in MemoryQueue.carried(second)] == [2, 1]
    assert [type(c) for _, c in MemoryQueue.carried(second)] == [Part, _Published]
    queue.commit(second)
    assert ledger.snapshot() == {}


class HeldArrivals(FirstArrivals):
    """Span identity over a store holding ``held`` (key -> insert_token hash) instead of querying one."""

    def __init__(self, held: dict[Key, int]) -> None:  # no client
        self.held = held

    def stored(self, keys: Iterable[Key]) -> dict[Key, int]:
        return {k: self.held[k] for k in keys if k in self.held}


def reference_first_arrivals(keys: list[Key], stored: dict[Key, int], token: str) -> list[int]:
    ours = token_hash(token) or None
    seen: set[Key] = set()
    keep = []
    for i, key in enumerate(keys):
        if key in seen or (key in stored and stored[key] != ours):
            continue
        seen.add(key)
        keep.append(i)
    return keep


@SLOW
@given(records=st.lists(spans(), max_size=20), held=st.lists(st.integers(0, 19), max_size=5),
       ours=st.booleans())
def test_first_arrivals_as_the_per_key_loop(records: list[SpanRecord], held: list[int], ours: bool) -> None:
    keys = identity.identity_keys(records)
    assert keys == [(r.tenant, r.trace_id, r.span_id, r.start_time_ns) for r in records]
    stored = {keys[i]: token_hash("tok") if ours else 7 for i in held if i < len(keys)}
    kept, repeats = HeldArrivals(stored)(records, "tok")
    keep = reference_first_arrivals(keys, stored, "tok")
    assert (kept, repeats) == ((records, 0) if len(keep) == len(keys) else ([records[i] for i in keep],
                                                                            len(keys) - len(keep)))


def reference_time_ranges(times: list[int], gap_ns: int, most: int) -> list[tuple[int, int]]:
    ordered = np.unique(np.asarray(times, dtype=np.int64))
    if not len(ordered):
        return []
    gaps = np.diff(ordered)
    cuts = np.flatnonzero(gaps > gap_ns)
    if len(cuts) >= most:
        cuts = np.sort(cuts[np.argsort(gaps[cuts], kind="stable")[len(cuts) - (most - 1):]])
    los = [int(ordered[0]), *ordered[cuts + 1].tolist()]
    his = [*ordered[cuts].tolist(), int(ordered[-1])]
    return list(zip(los, his, strict=True))


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.integers(0, 60), max_size=40).map(lambda ts: [t * 10 for t in ts]),
       gap=st.integers(0, 40), most=st.integers(1, 5))
def test_time_ranges_as_made_unique(times: list[int], gap: int, most: int) -> None:
    """Sorting without np.unique: repeated times (gaps of 0) change no range, and ties between gaps still
    go to the first."""
    assert time_ranges(times, gap_ns=gap, most=most) == reference_time_ranges(times, gap, most)


def test_a_batch_mixing_key_layouts_takes_out_every_request() -> None:
    """Budget keys added while a request bigger than a batch is half written: the batch holding its second part
    (aggregated again, with the new keys) and a whole request published before the change (its aggregate
    re-shaped on the way out) has two entries that land on one key. Both are taken out, so nothing stays
    pending (found by the property test above: the second used to replace the first, leaving its spend pending
    for good)."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(10_000), ledger)
    split = [span_record(service_name="svc-b", cost_pusd=193_993 if i == 5 else None) for i in range(7)]
    whole = [span_record(service_name="svc-b", cost_pusd=1), span_record(), span_record()]
    queue.publish(split)
    queue.publish(whole)
    first = queue.take(4, 0.0)
    assert first is not None and len(first.records) == 4
    queue.commit(first)
    ledger.extend_keys(("team",), ("user.id",))
    rest = queue.take(6, 0.0)
    assert rest is not None and [n for n, _ in MemoryQueue.carried(rest)] == [3, 3]
    queue.commit(rest)
    assert ledger.snapshot() == {}


def test_a_request_split_across_a_key_change_leaves_no_residue() -> None:
    """Budget keys added between the parts of a request bigger than a batch: the second part is aggregated with the
    keys the request was aggregated with, so it takes out exactly the (re-shaped) entries publish added. Aggregated
    with the new keys it left +cost under ("", "") and -cost under ("a", "x") for good."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(100), ledger)
    queue.publish([span_record(cost_pusd=c, attributes={"team": "a", "user.id": "x"}) for c in (1, 2, 3, 4)])
    first = queue.take(2, 0.0)
    assert first is not None
    queue.commit(first)
    ledger.extend_keys(("team",), ("user.id",))
    assert [(dims[4], cost) for (dims, _), cost in ledger.snapshot().items()] == [(("", ""), 7)]
    rest = queue.take(10, 0.0)
    assert rest is not None
    queue.commit(rest)
    assert ledger.snapshot() == {}


def _wire_safe(r: SpanRecord) -> SpanRecord:
    """``r`` with its counts and costs within what a Kafka record carries (uint64 tokens, int64 costs)."""
    def fits(n: int | None) -> int | None:
        return n if n is None or n < 2**63 else n % 2**63
    return dataclasses.replace(r, usage=TokenUsage(*(n % 2**64 for n in (
        r.usage.input_tokens, r.usage.output_tokens, r.usage.cache_read_tokens, r.usage.cache_write_tokens,
        r.usage.reasoning_tokens))), cost_pusd=fits(r.cost_pusd), reported_cost_pusd=fits(r.reported_cost_pusd))


@SLOW
@given(batch=st.lists(spans(), max_size=30))
def test_the_kafka_consumers_rows_count_as_the_records_do(batch: list[SpanRecord]) -> None:
    """The Kafka consumer's spend rows, read from the wire records (``WireBatch``), are the records' own rows
    and count what the in-process writer counts of the same records: a partial price's missing dimension and
    a priced span's reported cost included."""
    batch = [_wire_safe(r) for r in batch]
    wire = kafka_codec.WireBatch()
    if batch:
        encoded = kafka_codec.encode_many(batch)
        wire.add(kafka_codec.encode_batch(encoded), kafka_codec.batch_headers(len(encoded)))
    assert wire.spend_rows() == spend_rows(batch)
    from_wire = SpendCollector(LabelFolder(default_limit=3, global_limit=5))
    from_wire.observe_rows(wire.spend_rows())
    from_records = SpendCollector(LabelFolder(default_limit=3, global_limit=5))
    from_records.observe_records(batch)
    assert families(from_wire) == families(from_records)
