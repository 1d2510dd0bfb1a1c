"""The Redact stage: modes, fail-closed content keys, secret scan, keyed hashes, config and counters."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.pipeline import default_transforms
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.transforms.redact import (
    HASH_PREFIX,
    Redact,
    RedactionConfig,
    RedactionConfigError,
    parse_redaction,
)
from llm_cost_tracker.types import SpanRecord

KEY = "k" * 32
PROMPT = '[{"role":"user","parts":[{"type":"text","content":"I am ana@example.com, key sk-proj-Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3"}]}]'


def record(attrs: dict[str, str], resource: dict[str, str] | None = None) -> SpanRecord:
    base = {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": "10"}
    return span_record(resource_attributes={"service.name": "svc", **(resource or {})}, attributes={**base, **attrs})


def test_default_drops_content_and_keeps_the_rest() -> None:
    """With no configuration, every content attribute is dropped and pricing attributes stay."""
    r = Redact()(record({"gen_ai.input.messages": PROMPT, "gen_ai.output.messages": "hi",
                         "gen_ai.system_instructions": "be nice", "gen_ai.prompt.0.content": "x",
                         "gen_ai.completion.0.content": "y", "llm.input_messages.0.message.content": "z",
                         "llm.output_messages.0.message.role": "assistant", "input.value": "a", "output.value": "b"}))
    assert r.attributes == {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": "10"}
    assert r.resource_attributes == {"service.name": "svc"}


def test_unknown_key_under_content_prefix_fails_closed() -> None:
    """A key no rule names under a content prefix is dropped, even when content is kept or masked."""
    for mode in ("keep", "mask"):
        r = Redact(RedactionConfig(content_mode=mode))(record({
            "gen_ai.input.messages": "hello", "gen_ai.input.messages_v2": "secret prompt",
            "input.extra": "x", "gen_ai.output.type": "text", "input.mime_type": "application/json"}))
        assert "gen_ai.input.messages_v2" not in r.attributes and "input.extra" not in r.attributes
        assert r.attributes["gen_ai.input.messages"] == "hello"
        assert r.attributes["gen_ai.output.type"] == "text"  # allowlisted by default
        assert r.attributes["input.mime_type"] == "application/json"


def test_mask_mode_replaces_entities_with_placeholders() -> None:
    """Mask mode keeps the text and replaces each entity with its typed placeholder."""
    r = Redact(RedactionConfig(content_mode="mask"))(record({"gen_ai.input.messages": PROMPT}))
    assert r.attributes["gen_ai.input.messages"] == PROMPT.replace("ana@example.com", "<EMAIL>").replace(
        "sk-proj-Ab3Ab3Ab3Ab3Ab3Ab3Ab3Ab3", "<OPENAI_KEY>")


def test_hash_mode_is_a_stable_keyed_hmac() -> None:
    """Hash mode stores HMAC-SHA256 under the key: equal values group, other keys give other hashes."""
    config = RedactionConfig(modes=(("gen_ai.input.messages", "hash"), ("enduser.id", "hash")), hmac_key=KEY)
    a = Redact(config)(record({"gen_ai.input.messages": PROMPT, "enduser.id": "u-1"}))
    b = Redact(config)(record({"gen_ai.input.messages": PROMPT, "enduser.id": "u-1"}))
    expected = HASH_PREFIX + hmac.new(KEY.encode(), PROMPT.encode(), hashlib.sha256).hexdigest()
    assert a.attributes["gen_ai.input.messages"] == b.attributes["gen_ai.input.messages"] == expected
    assert a.attributes["enduser.id"] == b.attributes["enduser.id"] != "u-1"
    other = Redact(RedactionConfig(content_mode="hash", hmac_key="x" * 32))(record({"gen_ai.input.messages": PROMPT}))
    assert other.attributes["gen_ai.input.messages"] != expected


def test_rules_exact_before_glob_and_longest_glob_first() -> None:
    """An exact rule beats a glob, and a longer glob beats a shorter one."""
    config = RedactionConfig(modes=(("gen_ai.prompt*", "mask"), ("gen_ai.prompt.0*", "keep"),
                                    ("gen_ai.prompt.1.content", "drop")))
    r = Redact(config)(record({"gen_ai.prompt.0.content": "a@b.example.com", "gen_ai.prompt.1.content": "x",
                               "gen_ai.prompt.2.content": "c@d.example.com"}))
    assert r.attributes["gen_ai.prompt.0.content"] == "a@b.example.com"
    assert "gen_ai.prompt.1.content" not in r.attributes
    assert r.attributes["gen_ai.prompt.2.content"] == "<EMAIL>"


def test_configured_content_and_allowlist() -> None:
    """Extra content patterns are dropped (and fail closed below them); allowlisted keys are stored as is."""
    config = RedactionConfig(content=("myapp.prompt*",), allow=("myapp.prompt_version",))
    r = Redact(config)(record({"myapp.prompt": "hi", "myapp.prompt.extra": "x", "myapp.prompt_version": "3",
                               "myapp.other": "y"}))
    assert {k: v for k, v in r.attributes.items() if k.startswith("myapp")} == {
        "myapp.prompt_version": "3", "myapp.other": "y"}


def test_secrets_are_masked_in_every_other_attribute_and_resource() -> None:
    """By default non-content attributes and resource attributes are scanned for secrets only."""
    r = Redact()(record({"http.url": "https://x.example.com/?key=AIzaSyA" + "b1C2d" * 6 + "12",
                         "user.email": "ana@example.com"}, resource={"deploy.token": "ghp_" + "a1B2" * 9}))
    assert r.attributes["http.url"] == "https://x.example.com/?key=<GOOGLE_API_KEY>"
    assert r.attributes["user.email"] == "ana@example.com"
    assert r.resource_attributes["deploy.token"] == "<GITHUB_TOKEN>"
    everything = Redact(RedactionConfig(scan="all"))(record({"user.email": "ana@example.com"}))
    assert everything.attributes["user.email"] == "<EMAIL>"
    off = Redact(RedactionConfig(scan="off"))(record({"deploy.token": "ghp_" + "a1B2" * 9}))
    assert off.attributes["deploy.token"] == "ghp_" + "a1B2" * 9


def test_counts_removals_never_values() -> None:
    """Removals are counted per detector and mode; no attribute value appears in the metrics."""
    metrics = Metrics()
    redact = Redact(RedactionConfig(content_mode="mask"), metrics)
    redact(record({"gen_ai.input.messages": PROMPT, "gen_ai.input.unknown": "boo", "note": "AKIAIOSFODNN7EXAMPLE"}))
    text = generate_latest(metrics.registry).decode()
    assert 'llm_redactions_total{detector="email",mode="mask"} 1.0' in text
    assert 'llm_redactions_total{detector="openai_key",mode="mask"} 1.0' in text
    assert 'llm_redactions_total{detector="aws_access_key",mode="mask"} 1.0' in text
    assert 'llm_redactions_total{detector="unknown_content",mode="drop"} 1.0' in text
    assert "ana@example.com" not in text and "AKIAIOSFODNN7EXAMPLE" not in text and "boo" not in text


def test_redact_runs_last_in_default_transforms() -> None:
    """The default per-record stages end with redaction, after usage and price have read the attributes."""
    stages = default_transforms(lambda: None, Metrics())  # type: ignore[arg-type,return-value]
    assert isinstance(stages[-1], Redact)


def test_empty_table_is_the_default_policy() -> None:
    """An absent or empty [redaction] table gives the defaults."""
    assert parse_redaction({}) == RedactionConfig() == parse_redaction({"redaction": {}})


def test_table_is_parsed() -> None:
    """Every key of the [redaction] table reaches the policy."""
    config = parse_redaction({"redaction": {
        "content_mode": "mask", "scan": "all", "content": ["a.b*"], "allow": ["input.kind"],
        "detectors": ["email", "credit_card"], "modes": {"gen_ai.output.messages": "hash"}}}, hmac_key=KEY)
    assert config == RedactionConfig(content_mode="mask", scan="all", content=("a.b*",), allow=("input.kind",),
                                     detectors=("email", "credit_card"),
                                     modes=(("gen_ai.output.messages", "hash"),), hmac_key=KEY)


def test_bad_table_lists_every_problem() -> None:
    """A bad [redaction] table is refused with all its problems at once, including hash without a key."""
    with pytest.raises(RedactionConfigError) as info:
        parse_redaction({"redaction": {"content_mode": "shred", "scan": "some", "colour": "red",
                                       "detectors": ["email", "dna"], "allow": "input.kind", "content": ["*"],
                                       "modes": {"gen_ai.prompt*": "hash", "x": "zap"}}})
    problems = "\n".join(info.value.problems)
    for fragment in ("content_mode", "redaction.scan", "unknown key 'colour'", "unknown detector 'dna'",
                     "redaction.allow", "matches every attribute", "redaction.modes.x", "needs a key"):
        assert fragment in problems
    assert len(info.value.problems) == 8


def test_hash_without_key_refuses_to_build() -> None:
    """The stage cannot be built with hash mode and no key, or with a short key."""
    with pytest.raises(RedactionConfigError, match="needs a key"):
        Redact(RedactionConfig(content_mode="hash"))
    with pytest.raises(RedactionConfigError, match="at least 16"):
        Redact(RedactionConfig(content_mode="hash", hmac_key="short"))


def test_from_settings_reads_the_config_file(tmp_path: Path) -> None:
    """Settings' config file supplies the [redaction] table and the HMAC key comes from the settings."""
    path = tmp_path / "lct.toml"
    path.write_text('[redaction]\ncontent_mode = "hash"\n')
    redact = Redact.from_settings(Settings(config_file=str(path), redaction_hmac_key=KEY))
    assert redact(record({"input.value": "hi"})).attributes["input.value"].startswith(HASH_PREFIX)
    with pytest.raises(RedactionConfigError):
        Redact.from_settings(Settings(config_file=str(path)))


def test_hmac_key_is_not_in_repr() -> None:
    """The HMAC key does not show up when settings or the policy are printed."""
    assert KEY not in repr(Settings(redaction_hmac_key=KEY))
    assert KEY not in repr(RedactionConfig(hmac_key=KEY))


def test_plan_fast_path_matches_full_path() -> None:
    """Spans whose keys are all kept or scanned take the planned path; it stores what the general
    path stores, returns the input itself when nothing changes, and still masks secrets anywhere."""
    redact = Redact()
    clean = {"gen_ai.request.model": "claude-sonnet-4-5-20250929", "gen_ai.response.id": "chatcmpl-9531985d5d9dc9f8",
             "server.address": "api.example.com", "user.id": "user-1"}
    counts: dict[tuple[str, str], int] = {}
    assert redact.redact_attributes(clean, counts) is clean and not counts
    dirty = {**clean, "http.url": "https://x.test/?key=AKIAIOSFODNN7EXAMPLE", "note": "sk-proj-" + "Ab3" * 10}
    out = redact.redact_attributes(dirty, counts)
    assert out["http.url"] == "https://x.test/?key=<AWS_ACCESS_KEY>" and out["note"] == "<OPENAI_KEY>"
    assert out["gen_ai.request.model"] == clean["gen_ai.request.model"]
    assert counts == {("aws_access_key", "mask"): 1, ("openai_key", "mask"): 1}
    assert dirty["note"].startswith("sk-proj-")  # the input is not changed
    # the same keys again (cached plan), and a key set with content (general path)
    assert redact.redact_attributes(dirty, {}) == out
    mixed = {**dirty, "gen_ai.input.messages": PROMPT}
    assert redact.redact_attributes(mixed, {}) == out


def test_card_numbers_are_never_kept_in_clear() -> None:
    """A Luhn-valid card is masked in an ordinary value by default, in an allowlisted (kept) value, with
    scan off, and in mask mode even when the configured detectors leave cards out; others stay."""
    card, plain = "4539 1488 0343 6467", "4539148803436467"
    attrs = {"payment.note": f"paid with {card}", "gen_ai.tool.call.id": plain, "order.id": "4539148803436468"}
    for redact in (Redact(), Redact(RedactionConfig(scan="off")),
                   Redact(RedactionConfig(content_mode="mask", detectors=("email",)))):
        counts: dict[tuple[str, str], int] = {}
        out = redact.redact_attributes(dict(attrs), counts)
        assert out == {"payment.note": "paid with <CREDIT_CARD>", "gen_ai.tool.call.id": "<CREDIT_CARD>",
                       "order.id": "4539148803436468"}  # (not Luhn-valid: not a card)
        assert counts == {("credit_card", "mask"): 2}
    record = span_record(attributes={"gen_ai.input.messages": f"my card is {card}"})
    masked = Redact(RedactionConfig(content_mode="mask", detectors=("email",)))(record)
    assert masked.attributes == {"gen_ai.input.messages": "my card is <CREDIT_CARD>"}


def test_a_key_holding_a_secret_drops_its_attribute() -> None:
    """An attribute whose key holds a key or card number is dropped and counted under the detector."""
    counts: dict[tuple[str, str], int] = {}
    attrs = {"app.AKIAQ7ZXWB3RTY4UP2LM": "1", "card.4539148803436467": "x", "server.address": "api.example.com"}
    assert Redact().redact_attributes(attrs, counts) == {"server.address": "api.example.com"}
    assert counts == {("aws_access_key", "drop"): 1, ("credit_card", "drop"): 1}


def test_scrub_names_replaces_names_that_hold_secrets() -> None:
    """Model, provider (checked before lower-casing), operation, service and tenant holding a secret become
    its placeholder; the span name is masked in place; ordinary names are untouched and nothing is counted."""
    from llm_cost_tracker.transforms.scrub import ScrubNames
    from llm_cost_tracker.transforms.usage import ExtractUsage

    metrics = Metrics()
    scrub = ScrubNames(metrics)
    attrs = {"gen_ai.provider.name": "AKIAQ7ZXWB3RTY4UP2LM", "gen_ai.request.model": "sk-proj-Zq81xVb27LmN4kT9sRw3YhU6",
             "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "10"}
    record = ExtractUsage()(span_record(service_name="svc 4539148803436467",
                                        span_name="chat ghp_8sK2mN5pQ7rT1vW3xY6zA9bC4dE0fG2hJ5kL", attributes=attrs,
                                        tenant="acme"))
    assert record.provider == "akiaq7zxwb3rty4up2lm"
    scrub(record)
    assert (record.provider, record.request_model, record.operation) == ("<aws_access_key>", "<OPENAI_KEY>", "chat")
    assert (record.service_name, record.tenant, record.span_name) == ("<CREDIT_CARD>", "acme", "chat <GITHUB_TOKEN>")
    text = generate_latest(metrics.registry).decode()
    assert 'llm_redactions_total{detector="github_token",mode="mask"} 1.0' in text
    clean = span_record(service_name="checkout-service", span_name="chat gpt-4o-2024-08-06")
    assert scrub(dataclasses.replace(clean)) == clean  # a copy in: in-place changes would show
