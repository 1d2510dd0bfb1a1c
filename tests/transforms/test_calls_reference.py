"""Call identity against its reference (the implementation before the window became a dict and a deque):
every generated sequence of requests, refusals (``forget``) and clock steps gives the same marks, the same
duplicate and eviction callbacks in the same order, and the same indexes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from llm_cost_tracker.testing import span_record
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
    "scope": st.sampled_from(["", "sdk", "instr"]),
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


def _ids(entry: tuple[Any, ...], new: bool) -> tuple[str, str]:
    return entry[calls.KEY] if new else (entry[reference.TRACE], entry[reference.SPAN])


def _indexes(c: Any, new: bool) -> tuple[object, ...]:
    """What both implementations remember, in a form they share: carriers by key, by response and by usage
    (each bucket oldest first), and what each carrier absorbed."""
    entries = [(_ids(e, new), e[-1], e[-2]) for e in (c._order if new else c._entries.values())
               if not new or c._entries.get(e[calls.KEY]) is e]
    usage = {k: [_ids(e, new) for e in (v if not isinstance(v, tuple) else (v,))] for k, v in c._by_usage.items()}
    return (c.size, entries, {k: _ids(e, new) for k, e in c._by_response.items()}, usage, c._absorbed)


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
    for name, module in (("old", reference), ("new", calls)):
        log = told[name]
        both[name] = module.CallIdentity(module.CallWindow(max_entries, 5.0),
                                         on_duplicate=lambda rule, log=log: log.append(("duplicate", rule)),
                                         on_evict=lambda why, n, log=log: log.append(("evict", why, n)),
                                         clock=lambda: now[0])
    sent: dict[str, list[list[SpanRecord]]] = {"old": [], "new": []}
    with mock.patch.object(calls, "_COMPACT_MIN", compact_min):
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
            assert _indexes(both["old"], False) == _indexes(both["new"], True)
            new = both["new"]
            assert len(new._order) - new._dead == new.size  # each carrier once in the order, besides the forgotten
