"""Call identity: which spans are the same provider call, which one carries the cost, bounded memory."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from llm_cost_tracker.compiled import compiled, compiled_or_python
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms import _call_window as window
from llm_cost_tracker.transforms.calls import (
    DUPLICATE_OF,
    DUPLICATE_RULE,
    CallColumns,
    CallIdentity,
    CallWindow,
    HexIds,
    Pooled,
    call_columns,
    fixed_ends,
    hex_hashes,
    string_hashes,
    warm_up,
)
from llm_cost_tracker.types import SpanRecord, TokenUsage

S = 10**9


def _id(name: str, size: int) -> str:
    return name.encode().hex().rjust(size, "0")


def span(span_id: str, *, scope: str, response_id: str = "", trace: str = "t1", parent: str = "", start: int = 0,
         end: int = S, usage: tuple[int, int] = (1000, 200), tenant: str = "", service: str = "svc",
         instance: str = "i-1") -> SpanRecord:
    attrs = {"gen_ai.response.id": response_id} if response_id else {}
    return span_record(trace_id=_id(trace, 32), span_id=_id(span_id, 16), parent_span_id=_id(parent, 16) if parent else "",
                       start_time_ns=start, duration_ns=end - start, service_name=service,
                       resource_attributes={"service.instance.id": instance}, attributes=attrs, tenant=tenant,
                       provider="openai", request_model="gpt-4o-mini", usage=TokenUsage(*usage), cost_pusd=1000,
                       scope_name=scope)


def statuses(records: list[SpanRecord]) -> list[str]:
    return [r.pricing_status for r in records]


def test_same_response_id_in_separate_exports_is_one_call() -> None:
    """Two instrumentations' spans naming one response, exported apart: the first carries the cost."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="msg_1", trace="t1")
    b = span("b", scope="instr", response_id="msg_1", trace="t2", usage=(1000, 201))  # counts may differ
    calls([a])
    calls([b])
    assert statuses([a, b]) == ["priced", "duplicate"]
    assert (b.cost_pusd, b.attributes[DUPLICATE_OF], b.attributes[DUPLICATE_RULE]) == (None, a.span_id, "response_id")


def test_within_one_export_the_span_that_ended_first_carries_the_cost() -> None:
    """The rule does not depend on the order inside the request: the earlier end wins."""
    calls = CallIdentity()
    outer = span("outer", scope="oi", start=0, end=3 * S)
    inner = span("inner", scope="sdk", parent="outer", start=S, end=2 * S, response_id="msg_1")
    calls([outer, inner])
    assert statuses([outer, inner]) == ["duplicate", "priced"]
    assert outer.attributes[DUPLICATE_RULE] == "nested"


def test_same_response_id_of_another_tenant_or_provider_is_another_call() -> None:
    calls = CallIdentity()
    a = span("a", scope="x", response_id="r", tenant="acme")
    b = span("b", scope="y", response_id="r", tenant="beta", usage=(1, 1))
    calls([a])
    calls([b])
    assert statuses([a, b]) == ["priced", "priced"]


def test_identical_concurrent_calls_of_one_instrumentation_are_two_calls() -> None:
    """Same usage, overlapping, same scope: two calls (only another instrumentation's span can be a copy)."""
    calls = CallIdentity()
    a, b = span("a", scope="openai", trace="t1"), span("b", scope="openai", trace="t2")
    calls([a, b])
    assert statuses([a, b]) == ["priced", "priced"]


def test_overlap_pairs_one_to_one() -> None:
    """Two identical concurrent calls seen by two instrumentations (in separate traces): two priced, two
    duplicates, whatever the pairing."""
    calls = CallIdentity()
    spans = [span("a1", scope="openai", trace="t1", start=1, end=S), span("a2", scope="openai", trace="t2", start=2,
             end=S + 1), span("l1", scope="langchain", trace="t3", start=0, end=S + 2),
             span("l2", scope="langchain", trace="t4", start=0, end=S + 3)]
    calls(spans)
    assert statuses(spans) == ["priced", "priced", "duplicate", "duplicate"]
    assert {s.attributes[DUPLICATE_OF] for s in spans[2:]} == {spans[0].span_id, spans[1].span_id}


def test_overlap_needs_overlapping_times_same_instance_and_usage() -> None:
    calls = CallIdentity()
    a = span("a", scope="openai", start=0, end=S)
    later = span("b", scope="langchain", start=2 * S, end=3 * S, trace="t2")
    other_instance = span("c", scope="langchain", instance="i-2", trace="t3")
    other_usage = span("d", scope="langchain", usage=(1000, 199), trace="t4")
    calls([a, later, other_instance, other_usage])
    assert statuses([a, later, other_instance, other_usage]) == ["priced"] * 4


def test_a_retried_span_is_not_its_own_duplicate() -> None:
    """The same span id again (a retried Export) is span identity, not a second instrumentation."""
    calls = CallIdentity()
    a = span("a", scope="x", response_id="r")
    calls([a])
    again = span("a", scope="x", response_id="r")
    calls([again])
    assert again.pricing_status == "priced"


def test_a_retried_duplicate_is_a_duplicate_again() -> None:
    calls = CallIdentity()
    carrier, dup = span("a", scope="openai"), span("b", scope="langchain", trace="t2")
    calls([carrier])
    calls([dup])
    retry = span("b", scope="langchain", trace="t2")
    calls([retry])
    assert statuses([dup, retry]) == ["duplicate", "duplicate"]


def test_a_refused_export_is_forgotten() -> None:
    """When the queue refuses an Export its spans are forgotten: the next span of the call carries the cost."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="r")
    calls([a])
    calls.forget([a])
    b = span("b", scope="instr", response_id="r", trace="t2")
    calls([b])
    assert b.pricing_status == "priced"
    assert calls.size == 1


def test_memory_is_bounded_by_entries_and_age() -> None:
    """Past max_entries the oldest span is forgotten, and every span after max_age_seconds; both counted."""
    now = [0.0]
    evicted: dict[str, int] = {}
    calls = CallIdentity(CallWindow(max_entries=100, max_age_seconds=60), on_evict=lambda why, n: evicted.update(
        {why: evicted.get(why, 0) + n}), clock=lambda: now[0])
    for i in range(250):
        calls([span(f"{i:x}", scope="x", response_id=f"r{i}", trace=f"{i:x}", usage=(i + 1, 1))])
    assert calls.size == 100 and evicted == {"capacity": 150}
    late = span("late", scope="y", response_id="r0", trace="zz", usage=(1, 1))
    calls([late])
    assert late.pricing_status == "priced"  # its carrier was forgotten: priced, never lost
    now[0] = 61.0
    calls([span("new", scope="x", response_id="new")])
    assert calls.size == 1 and evicted == {"capacity": 151, "age": 100}
    # what was evicted left no row in any table: one span, one response and one usage filed, the new span's
    assert (calls._carriers.table_seq >= 0).sum(axis=1).tolist() == [1, 1, 1]


def test_carriers_sharing_one_usage_are_matched_and_forgotten_in_order() -> None:
    """Calls with the same token counts from one instance share a usage bucket: a span of another scope
    matches the carrier it overlaps, evicted carriers leave the bucket oldest first, and an emptied
    bucket leaves nothing behind."""
    now = [0.0]
    calls = CallIdentity(CallWindow(max_entries=3, max_age_seconds=60), clock=lambda: now[0])
    carriers = [span(f"c{i}", scope="sdk", trace=f"t{i}", start=10 * i * S, end=(10 * i + 1) * S) for i in range(5)]
    for c in carriers:
        calls([c])  # one scope: never each other's duplicates
    assert statuses(carriers) == ["priced"] * 5 and calls.size == 3  # c0 and c1 forgotten
    early = span("e1", scope="instr", trace="u1", start=10 * S, end=11 * S)  # overlaps c1 (forgotten)
    late = span("e3", scope="instr", trace="u3", start=30 * S, end=31 * S)  # overlaps c3
    calls([early])
    calls([late])
    assert (early.pricing_status, late.pricing_status) == ("priced", "duplicate")
    assert late.attributes[DUPLICATE_OF] == carriers[3].span_id
    now[0] = 61.0
    calls([])
    calls([span("x", scope="sdk", trace="x", usage=(7, 7))])
    assert calls.size == 1 and (calls._carriers.table_seq >= 0).sum(axis=1).tolist() == [1, 0, 1]
    newest = calls._carriers.table_seq[2][calls._carriers.table_seq[2] >= 0]
    assert calls._carriers.ring_tokens[newest & (calls._carriers.capacity - 1)].tolist() == [[7, 7]]


def test_threads_share_one_window() -> None:
    """Export handlers run on several threads: each call is still priced exactly once."""
    calls = CallIdentity()
    pairs = [(span(f"a{i}", scope="sdk", response_id=f"r{i}", trace=f"a{i}"),
              span(f"b{i}", scope="instr", response_id=f"r{i}", trace=f"b{i}")) for i in range(2000)]

    def feed(side: int) -> None:
        for pair in pairs:
            calls([pair[side]])

    threads = [threading.Thread(target=feed, args=(side,)) for side in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sorted(statuses(list(p))) == ["duplicate", "priced"] for p in pairs)


def test_duplicates_add_to_no_spend_metric() -> None:
    """llm_cost_usd, llm_tokens and llm_unpriced_spans leave duplicates out; unpriced spans carry a reason."""
    metrics = Metrics()
    carrier = span("a", scope="sdk", response_id="r")
    dup = span("b", scope="instr", response_id="r", trace="t2")
    no_usage = span("c", scope="sdk", usage=(0, 0), trace="t3")
    no_usage.cost_pusd, no_usage.pricing_status = None, "no_usage"
    unknown = span("d", scope="sdk", trace="t4", usage=(5, 5))
    unknown.cost_pusd, unknown.pricing_status = None, "unpriced"
    CallIdentity()([carrier, dup])
    metrics.spend.observe([carrier, dup, no_usage, unknown])
    got = {(m.name, tuple(sorted(s.labels.items()))): s.value for m in metrics.spend.collect() for s in m.samples}
    assert got[("llm_cost_usd", (("model", "gpt-4o-mini"), ("provider", "openai"), ("service", "svc")))] == 1e-9
    key = ("llm_tokens", (("model", "gpt-4o-mini"), ("provider", "openai"), ("service", "svc"), ("type", "input")))
    assert got[key] == 1000 + 0 + 5
    unpriced = {dict(k[1])["reason"]: v for k, v in got.items() if k[0] == "llm_unpriced_spans"}
    assert unpriced == {"no_usage": 1, "unknown_model": 1}


def test_spans_naming_different_responses_are_different_calls() -> None:
    """Identical usage and overlapping times from two scopes, but each names its own response: two calls."""
    calls = CallIdentity()
    a = span("a", scope="sdk", response_id="msg_1")
    b = span("b", scope="instr", response_id="msg_2", trace="t2")
    calls([a, b])
    assert statuses([a, b]) == ["priced", "priced"]


def _as_columns(records: list[SpanRecord]) -> CallColumns:
    """``records`` given to call identity as columns, each pool with a string more than the spans use (a pool
    holds what the request has, not only what these spans name)."""
    def pooled(values: list[str]) -> Pooled:
        pool = ["unused", *dict.fromkeys(values)]
        return pool, np.asarray([pool.index(v) for v in values], np.int64)

    rids = [str(r.attributes.get("gen_ai.response.id", "")) for r in records]
    traces, span_ids = "".join(r.trace_id for r in records), "".join(r.span_id for r in records)  # (the path's hex texts)
    parents = [r.parent_span_id for r in records]
    hashes = np.stack((hex_hashes(traces, fixed_ends(len(records), 32)),
                       hex_hashes(span_ids, fixed_ends(len(records), 16)),
                       hex_hashes("".join(parents), np.cumsum([len(p) for p in parents]))), axis=1)
    return call_columns(HexIds(traces, span_ids), hashes,
                        np.asarray([r.start_time_ns for r in records], np.uint64),
                        np.asarray([r.start_time_ns + r.duration_ns for r in records], np.uint64),
                        np.asarray([r.usage.input_tokens for r in records], np.int64),
                        np.asarray([r.usage.output_tokens for r in records], np.int64),
                        pooled(rids), pooled([r.tenant for r in records]), pooled([r.provider for r in records]),
                        pooled([r.service_name for r in records]),
                        pooled([r.resource_attributes.get("service.instance.id", "") for r in records]),
                        pooled([r.scope_name for r in records]))


def test_columns_are_keyed_as_records_are() -> None:
    """The columnar path's keys are the record path's, whatever the strings hold: characters past ASCII, a NUL (no
    separator), response ids and instances past the bound (cut alike); the ids hashed from one hex text as from
    a string each."""
    odd = [span("a", scope="sdk", tenant="tenant-é", response_id="r" * 600, instance="i" * 700),
           span("b", scope="inst\x00r", service="svc-日本", response_id="msg_1"),
           span("c", scope="", usage=(0, 0), response_id=""),
           span("d", scope="x", usage=(0, 7), parent="a")]
    ordered = sorted(odd, key=lambda r: (r.start_time_ns + r.duration_ns, r.span_id))
    from_records = CallIdentity._columns(ordered)
    from_columns = _as_columns(ordered)
    assert np.array_equal(from_records.keys, from_columns.keys)
    assert np.array_equal(from_records.flags, from_columns.flags)
    assert from_records.flags.tolist() == [7, 7, 0, 6]  # response, usage, scope; none; usage and scope
    other = _as_columns([span("a", scope="sdk", tenant="tenant-e", response_id="r" * 600, instance="i" * 700)])
    assert not np.array_equal(other.keys[0], from_columns.keys[0])  # one character more or less is another key


def test_columns_and_records_share_one_window() -> None:
    """A span filed from records is the same span when it comes again as columns (a retry the columnar path
    decides), and a second instrumentation's span given as columns is matched to a carrier filed from records."""
    calls = CallIdentity()
    carrier = span("a", scope="sdk", start=0, end=2 * S)
    calls([carrier])
    assert calls.file(_as_columns([carrier])) == {} and calls.size == 1
    wrapper = span("w", scope="instr", start=S, end=3 * S)
    late = span("z", scope="instr", usage=(5, 5), start=0, end=S)  # ends first: decided first
    assert calls.file(_as_columns([wrapper, late])) == {0: (carrier.span_id, carrier.trace_id, "overlap")}
    assert calls.size == 2  # the carrier and the other call's span
    again = span("w", scope="instr", start=S, end=3 * S)
    calls([again])  # the duplicate, retried through the records: still a duplicate of the same carrier
    assert again.attributes[DUPLICATE_OF] == carrier.span_id


def test_warm_up_runs_every_kernel() -> None:
    warm_up()
    assert all(kernel._jit is not None and not kernel.error for kernel in window.KERNELS)


def _decisions(records_of: list[list[SpanRecord]]) -> tuple[list[list[str]], list[tuple[str, int]], int]:
    """What a fresh window (room for 3 carriers: evictions) decides of ``records_of``, request by request."""
    evicted: list[tuple[str, int]] = []
    calls = CallIdentity(CallWindow(max_entries=3), on_evict=lambda reason, n: evicted.append((reason, n)))
    seen = []
    for records in records_of:
        calls(records)
        seen.append([f"{r.pricing_status}:{r.attributes.get(DUPLICATE_OF, '')}" for r in records])
    calls.forget(records_of[-1])
    return seen, evicted, calls.size


def test_the_window_decides_the_same_when_its_loops_run_as_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should numba fail to compile the window (``compiled_or_python``), its loops run as the Python they are
    written in: the same marks, evictions and size as compiled."""
    def requests() -> list[list[SpanRecord]]:
        return [[span(f"s{i}", scope="sdk" if i % 2 else "instr", trace=f"t{i // 3}", usage=(100 + i // 2, 7),
                      start=i * S, end=(i + 2) * S, response_id=f"r{i // 4}" if i % 5 == 0 else "")
                 for i in range(k, k + 4)] for k in range(0, 24, 4)]
    compiled = _decisions(requests())
    assert any(":" in s and s.split(":")[1] for seen in compiled[0] for s in seen)  # some duplicates were found
    for kernel in window.KERNELS:
        monkeypatch.setattr(kernel, "_jit", kernel.py_func)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (numpy's scalars warn where the hashes wrap around)
        assert _decisions(requests()) == compiled


def test_a_loop_numba_cannot_compile_runs_as_python_or_raises() -> None:
    def typed_nowhere(n: int) -> list[object]:
        return [object() for _ in range(n)]  # (numba has no type for object())

    fallback = compiled_or_python(typed_nowhere)
    assert len(fallback(3)) == 3 and fallback.error  # the Python ran; why it did is kept for the log
    with pytest.raises(Exception, match="(?i)typing|object"):
        compiled(typed_nowhere)(3)


def test_the_strings_hash_is_siphash_2_4() -> None:
    """The window's hash of a string is SipHash-2-4 of its bytes: the reference vectors of its authors (key
    00..0f, messages 00..n-1), each of the two hashes under its key, in either layout of the strings."""
    key = np.frombuffer(bytes(range(16)), "<u8")
    messages = [bytes(range(n)) for n in (0, 1, 8, 15, 16)]
    expected = [0x726FDB47DD0E0E31, 0x74F839C593DC67FD, 0x93F5F5799A932462, 0xA129CA6149BE45E5, 0x3F2ACC7F57C29BDB]
    out = np.zeros((2, len(messages)), np.uint64)
    ends = np.cumsum([len(m) for m in messages]).astype(np.int64)
    window.sip_hashes(np.frombuffer(b"".join(messages), np.uint8), ends, np.concatenate((key, key)), out)
    assert out[0].tolist() == expected and out[1].tolist() == expected
    texts = ["", "a", "0123456789abcdef" * 2, "é日本"]
    joined = string_hashes(texts)
    assert joined.tolist() == string_hashes([texts[2], texts[0], texts[3], texts[1]])[:, [1, 3, 0, 2]].tolist()
    assert joined[:, 2].tolist() == hex_hashes(texts[2], fixed_ends(1, 32))[:, 0].tolist()
    assert hex_hashes("ab" + texts[2], np.array([0, 2, 34])).tolist() == string_hashes(["", "ab", texts[2]]).tolist()
    assert string_hashes(["a\x00b", "a"])[:, 1].tolist() == joined[:, 1].tolist() == string_hashes(["a"])[:, 0].tolist()
    assert len({tuple(h) for h in joined.T.tolist()}) == 4 and joined[0].tolist() != joined[1].tolist()
