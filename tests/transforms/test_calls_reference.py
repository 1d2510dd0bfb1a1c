"""Call identity against its reference (the implementation before the window became a dict and a deque):
every generated sequence of requests, refusals (``forget``) and clock steps gives the same marks, the same
duplicate and eviction callbacks in the same order, and the same indexes."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms import _call_window as window
from llm_cost_tracker.transforms import calls
from llm_cost_tracker.types import SpanRecord, TokenUsage


def _load_reference() -> Any:
    name = "_lct_calls_reference"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_calls_reference.py"))
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


reference = _load_reference()

_SPAN = st.fixed_dictionaries({
    "trace": st.sampled_from(["t0", "t1", "t2"]),
    "span": st.sampled_from(["s0", "s1", "s2", "s3", "s4", "s5"]),
    "parent": st.sampled_from(["", "s0", "s1", "s2"]),
    "scope": st.sampled_from(["", "sdk", "instr", "agent"]),  # a carrier may absorb more than its row holds
    "tenant": st.sampled_from(["", "x"]),
    "provider": st.sampled_from(["openai", "anthropic"]),
    "response_id": st.sampled_from([None, "", "r0", "r1", "r2"]),
    "instance": st.sampled_from([None, "i-1", "i-2"]),
    "usage": st.sampled_from([(0, 0), (1, 1), (2, 1), (0, 3)]),
    "start": st.integers(0, 6),
    "duration": st.integers(0, 3),
})
_STEP = st.one_of(
    st.tuples(st.just("call"), st.lists(_SPAN, max_size=8), st.sampled_from([0.0, 0.0, 1.0, 2.0, 7.0, -1.0])),
    st.tuples(st.just("forget"), st.integers(0, 20), st.just(0.0)),
)


def _record(spec: dict[str, Any]) -> SpanRecord:
    attributes = {"gen_ai.response.id": spec["response_id"]} if spec["response_id"] is not None else {}
    resource = {"service.instance.id": spec["instance"]} if spec["instance"] is not None else {}
    return span_record(trace_id=spec["trace"], span_id=spec["span"], parent_span_id=spec["parent"],
                       start_time_ns=spec["start"], duration_ns=spec["duration"], resource_attributes=resource,
                       attributes=attributes, tenant=spec["tenant"], provider=spec["provider"],
                       usage=TokenUsage(*spec["usage"]), cost_pusd=1000, scope_name=spec["scope"])


def _seen(records: list[SpanRecord]) -> list[tuple[object, ...]]:
    return [(r.span_id, r.pricing_status, r.cost_pusd, sorted(r.attributes.items())) for r in records]


def _pair(text: str) -> tuple[int, int]:
    """The two hashes the window takes of a string, as uint64."""
    hashes = calls.string_hashes([text])
    return int(hashes[0, 0]), int(hashes[1, 0])


def _key(kind: int, tokens: tuple[int, int] = (0, 0), **strings: str) -> tuple[int, int]:
    """Key ``kind`` (the index of its first column: K1, R1, U1) of a span with these strings (and for U1 these token
    counts), as the window derives it."""
    parts = np.zeros((1, window.CALL_PARTS), np.uint64)
    for name, text in strings.items():
        column = getattr(window, name.upper())
        parts[0, column:column + 2] = _pair(text)
    keys = np.empty((1, window.CALL_KEYS), np.uint64)
    window.derive(parts, np.array([tokens], np.int64), keys)
    return int(keys[0, kind]), int(keys[0, kind + 1])


def _reference_indexes(c: Any) -> tuple[object, ...]:
    """What the reference remembers (carriers in arrival order, by response, by usage oldest first, what each
    absorbed), its keys hashed as the window hashes them."""
    def response(rk: tuple[str, ...] | None) -> object:
        return None if rk is None else _key(window.R1, tenant=rk[0], provider=rk[1], response=rk[2])

    def usage(uk: tuple[Any, ...] | None) -> object:
        return None if uk is None else (*_key(window.U1, (uk[4], uk[5]), tenant=uk[0], service=uk[1], instance=uk[2],
                                              provider=uk[3]), uk[4], uk[5])

    def ids(e: tuple[Any, ...]) -> tuple[str, str]:
        return e[reference.TRACE], e[reference.SPAN]

    entries = [(ids(e), usage(e[reference.USAGE_KEY]), response(e[reference.RESPONSE_KEY])) for e in c._entries.values()]
    usages = {usage(k): [ids(e) for e in (v if not isinstance(v, tuple) else (v,))] for k, v in c._by_usage.items()}
    absorbed = {k: {_pair(scope): _pair(span) for scope, span in v.items()} for k, v in c._absorbed.items()}
    return c.size, entries, {response(k): ids(e) for k, e in c._by_response.items()}, usages, absorbed


def _window_indexes(c: Any) -> tuple[object, ...]:
    """The same, read from the window's arrays; checks its counts of live and forgotten carriers on the way."""
    w = c._carriers
    mask = w.capacity - 1
    head, tail = int(w.meta[window.HEAD]), int(w.meta[window.TAIL])
    alive = [bool(w.ring_flags[q & mask] & window.ALIVE) for q in range(head, tail)]
    assert (sum(alive), len(alive) - sum(alive)) == (w.live, w.dead)

    def usage(s: int) -> object:
        k, t = w.ring_keys[s], w.ring_tokens[s]
        return (int(k[window.U1]), int(k[window.U2]), int(t[0]), int(t[1])) if w.ring_flags[s] & window.HAS_USAGE else None

    def response(s: int) -> object:
        k = w.ring_keys[s]
        return (int(k[window.R1]), int(k[window.R2])) if w.ring_flags[s] & window.HAS_RESPONSE else None

    live = [q & mask for q, a in zip(range(head, tail), alive, strict=True) if a]
    entries = [(w.carrier_ids(int(s)), usage(s), response(s)) for s in live]
    by_response = {tuple(map(int, w.table_keys[1, i])): w.carrier_ids(int(w.table_seq[1, i]))
                   for i in np.flatnonzero(w.table_seq[1] >= 0)}
    usages = {}
    for i in np.flatnonzero(w.table_seq[2] >= 0):
        chain, q = [], int(w.table_seq[2, i])
        newest = q & mask
        while q >= head:
            if w.ring_flags[q & mask] & window.ALIVE:
                chain.append(w.carrier_ids(int(q)))
            q = int(w.ring_uprev[q & mask])
        usages[usage(newest)] = chain[::-1]
    absorbed = {w.carrier_ids(int(s)): {(int(a[0]), int(a[1])): (int(a[2]), int(a[3])) for a in w.absorbed[s, :w.absorbed_n[s]]}
                for s in live if w.absorbed_n[s]}
    return c.size, entries, by_response, usages, absorbed


def _a(span: str, start: int) -> dict[str, Any]:
    return {"trace": "t0", "span": span, "parent": "", "scope": "sdk", "tenant": "", "provider": "openai",
            "response_id": None, "instance": None, "usage": (1, 1), "start": start, "duration": 0}


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_STEP, max_size=12), max_entries=st.integers(1, 6), compact_min=st.sampled_from([0, 1024]))
# a forgotten carrier at the front, arrived after the live one behind it (a test clock may step back): the live
# one still expires
@example(steps=[("call", [_a("s0", 0)], 7.0), ("call", [_a("s1", 1)], -7.0), ("forget", 0, 0.0),
                ("call", [_a("s2", 2)], 6.0)], max_entries=6, compact_min=1024)
# a carrier forgotten, then filed again, when the forgotten are cleared from the order: the new one stays, once
@example(steps=[("call", [_a("s0", 0)], 0.0), ("call", [_a("s1", 1)], 0.0), ("call", [_a("s2", 2)], 0.0),
                ("forget", 1, 0.0), ("call", [_a("s1", 1)], 0.0), ("forget", 0, 0.0), ("forget", 2, 0.0)],
         max_entries=6, compact_min=0)
# ends that tie: the smaller span id carries the cost, whatever the order in the request
@example(steps=[("call", [{**_a("s1", 0), "scope": "instr"}, _a("s0", 0)], 0.0)], max_entries=6, compact_min=0)
def test_the_window_marks_and_forgets_as_the_reference_did(steps: list[tuple[str, Any, float]], max_entries: int,
                                                           compact_min: int) -> None:
    told: dict[str, list[tuple[object, ...]]] = {"old": [], "new": []}
    now = [0.0]
    both = {}
    # the window's ring starts at the power of two >= max_entries (2 at least), so that requests grow it
    with mock.patch.object(calls, "_COMPACT_MIN", compact_min), mock.patch.object(calls, "_SPARE_ROWS", 0):
        for name, module in (("old", reference), ("new", calls)):
            log = told[name]
            both[name] = module.CallIdentity(module.CallWindow(max_entries, 5.0),
                                             on_duplicate=lambda rule, log=log: log.append(("duplicate", rule)),
                                             on_evict=lambda why, n, log=log: log.append(("evict", why, n)),
                                             clock=lambda: now[0])
        sent: dict[str, list[list[SpanRecord]]] = {"old": [], "new": []}
        for kind, arg, step in steps:
            now[0] += step
            for name, c in both.items():
                if kind == "call":
                    records = [_record(spec) for spec in arg]
                    sent[name].append(records)
                    assert c(records) is records
                elif sent[name]:
                    c.forget(sent[name][arg % len(sent[name])])
            assert [_seen(r) for r in sent["old"]] == [_seen(r) for r in sent["new"]]
            assert told["old"] == told["new"]
            assert _reference_indexes(both["old"]) == _window_indexes(both["new"])


def _random_span(rng: random.Random, step: int) -> dict[str, Any]:
    """A span of a small world: few traces, usages, instances and scopes, so that buckets grow long, carriers
    absorb more scopes than their row holds, and the same spans come again."""
    return {"trace": f"t{rng.randrange(4)}", "span": f"s{rng.randrange(40)}", "parent": rng.choice(["", "s0", "s1", "s7"]),
            "scope": rng.choice(["", "sdk", "instr", "agent", "lc"]), "tenant": rng.choice(["", "x"]),
            "provider": "openai", "response_id": rng.choice([None, None, "", f"r{rng.randrange(30)}"]),
            "instance": rng.choice([None, "i-1"]), "usage": rng.choice([(0, 0), (1, 1), (1, 1), (2, 1)]),
            "start": step + rng.randrange(5), "duration": rng.randrange(4)}


@pytest.mark.parametrize("seed", range(6))
def test_a_long_random_run_matches_the_reference(seed: int) -> None:
    """Thousands of steps in a small world: the ring grows, is laid out again without the forgotten, the tables
    wrap around their end and delete rows there, carriers absorb past their row's width; every step agrees."""
    rng = random.Random(seed)
    max_entries = rng.choice([3, 17, 40])
    now = [0.0]
    with mock.patch.object(calls, "_COMPACT_MIN", rng.choice([0, 8])), mock.patch.object(calls, "_SPARE_ROWS", 0):
        told: dict[str, list[tuple[object, ...]]] = {"old": [], "new": []}
        both = {name: module.CallIdentity(module.CallWindow(max_entries, 50.0),
                                          on_duplicate=lambda rule, log=told[name]: log.append(("duplicate", rule)),
                                          on_evict=lambda why, n, log=told[name]: log.append(("evict", why, n)),
                                          clock=lambda: now[0])
                for name, module in (("old", reference), ("new", calls))}
        sent: list[list[dict[str, Any]]] = []
        grew = 0
        for step in range(1500):
            now[0] += rng.choice([0.0, 0.0, 1.0, 3.0])
            if sent and rng.random() < 0.2:
                specs = sent[rng.randrange(len(sent))]
                for c in both.values():
                    c.forget([_record(spec) for spec in specs])
            else:
                specs = [_random_span(rng, step) for _ in range(rng.randrange(1, 30))]
                sent.append(specs)
                seen = []
                for c in both.values():
                    records = [_record(spec) for spec in specs]
                    c(records)
                    seen.append(_seen(records))
                assert seen[0] == seen[1], step
            assert told["old"] == told["new"], step
            if step % 10 == 0:
                assert _reference_indexes(both["old"]) == _window_indexes(both["new"]), step
            grew = max(grew, both["new"]._carriers.absorbed.shape[1])
        assert both["new"]._carriers.capacity > max_entries  # grown past its start
        assert grew > window.ABSORBED  # a carrier absorbed more scopes than a row first holds
        assert told["new"].count(("duplicate", "overlap")) and told["new"].count(("duplicate", "nested"))
