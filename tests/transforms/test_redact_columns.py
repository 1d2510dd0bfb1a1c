"""Redaction over a request's attribute columns gives what it gives record by record.

``Redact.process`` with the wire scan's ``AttributeColumns`` leaves the rows its gate calls clean
(``_value_gate``) as they are and sends every other row through the per-record path; these tests
compare the two paths on generated requests (secrets and card numbers in keys and values, content
keys, rules, repeated keys, non-ASCII text, grown dicts) under several policies, check the gate's
soundness directly, and check that the clean rows really skip the per-record path.
"""

from __future__ import annotations

import copy
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.testing import SECRETS, genai_attributes, make_request, make_span
from llm_cost_tracker.transforms._detectors import DETECTOR_NAMES, Scanner
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.redact import Redact, RedactionConfig
from tests.conftest import wire_scanned


def _counting(looked: list[int]) -> type[Redact]:
    """A Redact that notes the size of every dict it redacts record by record in ``looked``."""

    class Counting(Redact):
        __slots__ = ()

        def redact_attributes(self, attrs: dict[str, str], counts: dict[tuple[str, str], int]) -> dict[str, str]:
            looked.append(len(attrs))
            return super().redact_attributes(attrs, counts)

    return Counting

KEY = "k" * 32
POLICIES = {
    "default": RedactionConfig(),
    "scan all": RedactionConfig(scan="all"),
    "scan off": RedactionConfig(scan="off"),
    "rules": RedactionConfig(modes=(("user.id", "hash"), ("app.*", "mask"), ("server.address", "drop")),
                             allow=("gen_ai.response.id",), content_mode="hash", hmac_key=KEY),
}
VALUES = [
    "openai", "chat", "gpt-4o-mini", "stop", "api.example.com", "ana@example.com", "call +1 415 555 0100",
    "paid with " + SECRETS["credit_card"], SECRETS["credit_card"].replace(" ", ""), "4539148803436467 ok",
    "ünïcödé 4539 1488 0343 6467", "日本語のテキスト", "10.0.0.1", "fe80::1:2", "DE89370400440532013000",
    *SECRETS.values(), "chatcmpl-0123456789abcdef", "12345678901234", "sk-", "eyJ", "a\nb 4539-1488-0343-6467",
]
KEYS = ["gen_ai.response.id", "user.id", "app.note", "server.address", "gen_ai.input.messages", "gen_ai.prompt.0.x",
        "input.value", "order.card", f"app.{SECRETS['aws_access_key']}", "llm.token_count.prompt", "note"]


def _request(rng: random.Random, spans: int) -> bytes:
    out = []
    for _ in range(spans):
        attrs: dict[str, object] = dict(genai_attributes(input_tokens=rng.randrange(1, 10_000)))
        for _ in range(rng.randrange(0, 6)):
            attrs[rng.choice(KEYS)] = rng.choice(VALUES)
        if rng.random() < 0.2:
            attrs["gen_ai.response.id"] = f"chatcmpl-{rng.getrandbits(64):016x}"
        span = make_span(attrs, trace_id=os.urandom(16), span_id=os.urandom(8))
        if rng.random() < 0.1:  # a key twice on the wire: the dict keeps the last value
            again = make_span({"note": rng.choice(VALUES)}).attributes[0]
            span.attributes.append(again)
            span.attributes.append(copy.deepcopy(again))
            span.attributes[-1].value.string_value = rng.choice(VALUES)
        out.append(span)
    resource = {"service.name": rng.choice(["svc", "svc:" + SECRETS["github_token"]]),
                "note": rng.choice(VALUES)}
    return make_request(out, resource).SerializeToString()


def _counts(metrics: Metrics) -> list[str]:
    return sorted(line for line in generate_latest(metrics.registry).decode().splitlines()
                  if line.startswith("llm_redactions_total{"))


def _both(policy: RedactionConfig, payload: bytes, grow: float = 0.0,
          seed: int = 0) -> tuple[list[tuple[dict[str, str], dict[str, str]]], ...]:
    """The records redacted one by one, and through the columns; and both runs' redaction counters."""
    out = []
    for columnar in (False, True):
        records, columns = wire_scanned(payload)
        rng = random.Random(seed)
        for record in records:  # a stage before redaction may add a key (quirks, a partial price)
            if rng.random() < grow:
                record.attributes["llm_cost_tracker.quirks"] = rng.choice(VALUES)
        metrics = Metrics()
        stage = Redact(policy, metrics)
        if columnar:
            stage.process(records, columns)
        else:
            records = [stage(r) for r in records]
        out.append(([(r.attributes, r.resource_attributes) for r in records], _counts(metrics)))
    return tuple(out)


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("seed", range(6))
def test_columns_give_the_per_record_result(policy: str, seed: int) -> None:
    rng = random.Random(seed)
    payload = _request(rng, rng.randrange(1, 80))
    (per_record, counted), (columnar, counted_columnar) = _both(POLICIES[policy], payload, grow=0.2, seed=seed)
    assert columnar == per_record
    assert counted_columnar == counted


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(VALUES) | st.text(max_size=40), min_size=1, max_size=12), st.randoms())
def test_generated_values_give_the_per_record_result(values: list[str], rng: random.Random) -> None:
    spans = [make_span({**genai_attributes(), **{rng.choice(KEYS): v}}, trace_id=os.urandom(16),
                       span_id=os.urandom(8)) for v in values]
    payload = make_request(spans, {"service.name": "svc"}).SerializeToString()
    for policy in POLICIES.values():
        (per_record, counted), (columnar, counted_columnar) = _both(policy, payload)
        assert columnar == per_record
        assert counted_columnar == counted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(VALUES) | st.text(alphabet="0123456789 -\nsk-eyJAIzaKI@:é", max_size=30),
                max_size=8), st.sampled_from(["secrets", "all", "cards"]))
def test_flag_finds_every_text_maybe_would(texts: list[str], which: str) -> None:
    """Sound: a text that ``maybe`` answers yes for (alone or joined with others) is flagged."""
    names = {"secrets": ("openai_key", "jwt", "credit_card"), "all": DETECTOR_NAMES, "cards": ("credit_card",)}
    scanner = Scanner(names[which])
    flagged = set(scanner.flag(texts))
    for i, text in enumerate(texts):
        if scanner.maybe(text):
            assert i in flagged
    if scanner.maybe("\n".join(texts)):
        assert flagged


def test_clean_rows_skip_the_per_record_path() -> None:
    """The point of the columns: a request with nothing to redact costs no per-record look at its spans'
    values (only its resource is redacted, once)."""
    spans = [make_span(genai_attributes(input_tokens=i + 1), trace_id=os.urandom(16), span_id=os.urandom(8))
             for i in range(50)]
    records, columns = wire_scanned(make_request(spans, {"service.name": "svc"}).SerializeToString())
    looked: list[int] = []
    Counting = _counting(looked)
    stage = Counting()
    before = [r.attributes for r in records]
    stage.process(records, columns)
    assert looked == [1]  # the resource's one key
    assert all(r.attributes is d for r, d in zip(records, before, strict=True))
    looked.clear()
    records[3].attributes["llm_cost_tracker.quirks"] = "x"  # grown by a stage: no longer described
    stage.process(records, columns)
    assert looked == [len(records[3].attributes)]


def test_a_failing_batch_restores_every_record_and_counts_nothing() -> None:
    """All or nothing: the chain's re-run record by record then redacts each once (a hash not hashed twice)."""
    rng = random.Random(3)
    payload = _request(rng, 40)
    policy = POLICIES["rules"]
    (per_record, counted), _ = _both(policy, payload)
    records, columns = wire_scanned(payload)
    metrics = Metrics()
    seen: list[int] = []

    class FailsOnce(Redact):
        __slots__ = ()

        def redact_attributes(self, attrs: dict[str, str], counts: dict[tuple[str, str], int]) -> dict[str, str]:
            seen.append(1)
            if len(seen) == 5:
                raise RuntimeError("a bug on one span")
            return super().redact_attributes(attrs, counts)

    stage = FailsOnce(policy, metrics)
    before = [(r.attributes, r.resource_attributes) for r in records]
    with pytest.raises(RuntimeError):
        stage.process(records, columns)
    assert [(r.attributes, r.resource_attributes) for r in records] == before
    assert _counts(metrics) == []
    seen.clear()  # the chain: the batch fails again, then each record is redacted on its own
    out = Chain([stage]).process(records, lambda reason, message: None, columns=columns).records
    assert len(seen) > 5
    assert [(r.attributes, r.resource_attributes) for r in out] == per_record
    assert _counts(metrics) == counted


@pytest.mark.parametrize("policy", ["default", "scan all"])
def test_flagged_values_alone_are_masked(policy: str) -> None:
    """A row whose keys are all scanned or kept, with a value the gates flag (a card number, or a hex id that
    only looks like one), has those values masked without the per-record path, and the same outcome."""
    values = [SECRETS["credit_card"], "chatcmpl-0123456789abcdef", "4539148803436467 ok", "12345678901234",
              "sk-", SECRETS["openai_key"], "ana@example.com", "10.0.0.1 and a\nnewline"]
    spans = [make_span({**genai_attributes(input_tokens=i + 1), "note": values[i % len(values)],
                        "gen_ai.response.id": values[(i * 3) % len(values)]},
                       trace_id=os.urandom(16), span_id=os.urandom(8)) for i in range(40)]
    payload = make_request(spans, {"service.name": "svc"}).SerializeToString()
    (per_record, counted), (columnar, counted_columnar) = _both(POLICIES[policy], payload)
    assert columnar == per_record
    assert counted_columnar == counted
    assert any(a != before.attributes for (a, _), before in zip(per_record, wire_scanned(payload)[0], strict=True))
    records, columns = wire_scanned(payload)
    looked: list[int] = []
    Counting = _counting(looked)
    Counting(POLICIES[policy]).process(records, columns)
    assert looked == [1]  # the resource's one key: every span row went through the gate's answer
    assert [(r.attributes, r.resource_attributes) for r in records] == per_record
