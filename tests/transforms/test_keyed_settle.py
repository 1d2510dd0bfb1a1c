"""Detect and usage settled from a wire-scanned request's columns decide every span as record by record.

``Chain`` lets the first per-record stages settle what they can from which of their keys each record has
(``transforms/_keyed.py``) and runs ``__call__`` on the rest. These tests run the chain over generated
requests (every dialect key, counts that are floats, negative, huge or not numbers, aggregate kinds in any
case, two keys for one name, reported costs, a key twice on the wire, records grown after decoding) with and
without the columns, and compare the records kept, the rejections in order and the spans that are not LLM
calls; and check that the plain spans really skip ``__call__``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from llm_cost_tracker.transforms import usage as u
from llm_cost_tracker.transforms._keyed import Keyed, keyed
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.detect import KIND_KEYS, MODEL_KEYS, USAGE_KEYS, Detect
from llm_cost_tracker.types import SpanRecord
from tests.conftest import wire_scanned

COUNT_KEYS = sorted({k for _, k in u._INPUT + u._OUTPUT} | set(u._CACHE_READ + u._CACHE_WRITE + u._REASONING)
                    | set(USAGE_KEYS))
NAME_KEYS = sorted(set(u._PROVIDER + u._OPERATION + u._REQUEST_MODEL + u._RESPONSE_MODEL + MODEL_KEYS))
COUNTS: list[Any] = [0, 1, 7, 1200, 2**29 - 1, 2**29, 10**9, 10**9 + 1, -3, "12", "1.0", "2.5", "-1", "1e3", "",
                     "abc", " 7", "1_000", "٣", 1.0, 3.5]
NAMES: list[Any] = ["openai", "OpenAI", "chat", "Chat", "gpt-4o-mini", "", "anthropic", "claude-haiku-4-5",
                    "INVOKE_AGENT", "tool", "Chain", "workflow", "embeddings"]
COSTS: list[Any] = ["0.01", "", "0", "nan", "1e999999", "-1", 0.25, "abc"]
OTHER_KEYS = ["user.id", "server.address", "gen_ai.response.id", "note"]


def _span_attributes(rng: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if rng.random() < 0.6:
        attrs.update(genai_attributes(input_tokens=rng.randrange(0, 5000), output_tokens=rng.randrange(0, 500)))
    for _ in range(rng.randrange(0, 5)):
        attrs[rng.choice(COUNT_KEYS)] = rng.choice(COUNTS)
    for _ in range(rng.randrange(0, 4)):
        attrs[rng.choice(NAME_KEYS)] = rng.choice(NAMES)
    if rng.random() < 0.2:
        attrs[rng.choice(KIND_KEYS)] = rng.choice(NAMES)
    if rng.random() < 0.2:
        attrs[rng.choice(u._REPORTED_COST)] = rng.choice(COSTS)
    for _ in range(rng.randrange(0, 3)):
        attrs[rng.choice(OTHER_KEYS)] = rng.choice(NAMES)
    return attrs


def _request(rng: random.Random, spans: int) -> bytes:
    out = []
    for _ in range(spans):
        span = make_span(_span_attributes(rng), trace_id=os.urandom(16), span_id=os.urandom(8))
        if span.attributes and rng.random() < 0.15:  # a key twice on the wire: the dict keeps the last value
            again = copy.deepcopy(span.attributes[rng.randrange(len(span.attributes))])
            again.value.string_value = rng.choice(NAMES + ["5", "2.5"])
            span.attributes.append(again)
        out.append(span)
    return make_request(out, {"service.name": "svc"}).SerializeToString()


def _fields(records: list[SpanRecord]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, f.name) for f in dataclasses.fields(r)) for r in records]


def _run(payload: bytes, columnar: bool, grow: float = 0.0, seed: int = 0,
         stages: list[Any] | None = None) -> tuple[Any, ...]:
    records, columns = wire_scanned(payload)
    rng = random.Random(seed)
    for record in records:  # a record whose dict grew (or was replaced) is no longer described
        if rng.random() < grow:
            if rng.random() < 0.5:
                record.attributes["gen_ai.usage.output_tokens"] = "3"
            else:
                record.attributes = dict(record.attributes)
    rejected: list[tuple[str, str]] = []
    others: list[SpanRecord] = []
    processed = Chain(stages or [Detect(), u.ExtractUsage()]).process(
        records, lambda reason, message: rejected.append((reason, message)), others,
        columns if columnar else None)
    return _fields(processed.records), rejected, [r.span_id for r in others], processed.other


@settings(max_examples=80, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 60), st.sampled_from([0.0, 0.2]))
def test_settled_chain_gives_the_per_record_result(rng: random.Random, spans: int, grow: float) -> None:
    payload = _request(rng, spans)
    assert _run(payload, True, grow, spans) == _run(payload, False, grow, spans)


def test_the_generated_requests_take_every_path() -> None:
    """The generator above reaches what it is meant to: kept, rejected and not-LLM spans."""
    payload = _request(random.Random(1), 300)
    kept, rejected, others, other = _run(payload, True)
    assert kept and rejected and others and other == len(others)
    assert {reason for reason, _ in rejected} == {"invalid_token_count"}


class _Counting:
    """Wraps a stage, counting the records its ``__call__`` sees (``settle`` passes through)."""

    def __init__(self, stage: Any, seen: list[str]) -> None:
        self.stage, self.seen = stage, seen
        self.keyed_keys, self.keyed_flags = stage.keyed_keys, stage.keyed_flags

    def __call__(self, record: SpanRecord) -> SpanRecord:
        self.seen.append(record.span_id)
        return self.stage(record)  # type: ignore[no-any-return]

    def settle(self, records: list[SpanRecord], described: Keyed) -> list[bool]:
        return self.stage.settle(records, described)  # type: ignore[no-any-return]


def test_plain_spans_skip_call() -> None:
    spans = [make_span(genai_attributes(input_tokens=i + 1), trace_id=os.urandom(16), span_id=os.urandom(8))
             for i in range(20)]
    spans.append(make_span({**genai_attributes(), "gen_ai.usage.input_tokens": "12.0"}))  # read by parse_token_count
    spans.append(make_span({**genai_attributes(), "gen_ai.operation.name": "Invoke_Agent"}))  # not an LLM call
    records, columns = wire_scanned(make_request(spans).SerializeToString())
    detect_seen: list[str] = []
    usage_seen: list[str] = []
    others: list[SpanRecord] = []
    chain = Chain([_Counting(Detect(), detect_seen), _Counting(u.ExtractUsage(), usage_seen)])
    kept = chain.process(records, lambda reason, message: None, others, columns).records
    assert detect_seen == [records[21].span_id]
    assert usage_seen == [records[20].span_id]
    assert [r.span_id for r in others] == [records[21].span_id]
    assert len(kept) == 21 and kept[20].usage.input_tokens == 12
    assert [r.usage.input_tokens for r in kept[:20]] == list(range(1, 21))


def test_a_failing_settle_runs_the_stage_per_span() -> None:
    payload = _request(random.Random(5), 80)

    class Failing(u.ExtractUsage):
        __slots__ = ()

        def settle(self, records: list[SpanRecord], described: Keyed) -> list[bool]:
            super().settle(records[:10], Keyed(described.names, described.flags, described.masks[:10]))
            raise RuntimeError("a bug")

    assert _run(payload, True, stages=[Detect(), Failing()]) == _run(payload, False)


def test_masks_name_the_keys_each_record_has() -> None:
    payload = _request(random.Random(7), 120)
    records, columns = wire_scanned(payload)
    records[3].attributes["llm_cost_tracker.test"] = "1"  # grown: not described
    names = tuple(sorted(Detect.keyed_keys | u.ExtractUsage.keyed_keys))
    described = keyed(records, columns, names, Detect.keyed_flags)
    assert described is not None
    assert described.masks[3] == -1
    for record, mask in zip(records, described.masks, strict=True):
        if mask >= 0:
            present, flags = described.present(mask)
            assert present == set(names) & set(record.attributes)
            assert {key for key, _ in flags} >= {key for key in KIND_KEYS if key in record.attributes and
                                                 record.attributes[key].lower() in {"invoke_agent", "tool",
                                                                                    "chain", "workflow"}}
    assert sum(m >= 0 for m in described.masks) > len(records) // 2
    # a subset of the records, in another order, reads the same masks
    order = list(np.random.default_rng(1).permutation(len(records))[:50])
    again = keyed([records[i] for i in order], columns, names, Detect.keyed_flags)
    assert again is not None and again.masks == [described.masks[i] for i in order]
