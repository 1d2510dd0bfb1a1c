"""Detectors: each finds its entity, leaves look-alikes alone, and keeps the corpus recall."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.transforms._detectors import (
    DETECTOR_NAMES,
    IBAN_LENGTHS,
    SECRET_DETECTORS,
    SHAPE,
    Scanner,
    iban_valid,
    ipv6_valid,
    luhn_valid,
)

ALL = Scanner(DETECTOR_NAMES)
CORPUS = Path(__file__).parent / "testdata" / "corpus.jsonl"

POSITIVE = [
    ("email", "write to jane.doe+billing@example.co.uk today", "<EMAIL>"),
    ("email", "From: OLGA.Novak@mail.example.org\n", "<EMAIL>"),
    ("credit_card", "card 4111 1111 1111 1111 exp 09/27", "<CREDIT_CARD>"),
    ("credit_card", "amex 378282246310005.", "<CREDIT_CARD>"),
    ("credit_card", "mc 5555-5555-5555-4444", "<CREDIT_CARD>"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 please", "<IBAN>"),
    ("iban", "pay GB82WEST12345698765432.", "<IBAN>"),
    ("ipv4", "from 203.0.113.42 port 22", "<IPV4>"),
    ("ipv6", "client 2001:db8::8a2e:370:7334 asked", "<IPV6>"),
    ("phone", "call +1 (415) 555-0100 now", "<PHONE>"),
    ("phone", "tel. +44 20 7946 0958", "<PHONE>"),
    ("phone", "ring 415-555-0100 later", "<PHONE>"),
    ("openai_key", "OPENAI_API_KEY=sk-proj-" + "Ab3" * 20, "<OPENAI_KEY>"),
    ("openai_key", "key sk-" + "aB1" * 16 + " end", "<OPENAI_KEY>"),
    ("anthropic_key", "sk-ant-api03-" + "xY9_" * 24 + "AA", "<ANTHROPIC_KEY>"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE ok", "<AWS_ACCESS_KEY>"),
    ("github_token", "token ghp_" + "a1B2" * 9, "<GITHUB_TOKEN>"),
    ("github_token", "github_pat_11ABCDEFG0" + "x" * 12 + "_" + "Zz9" * 20, "<GITHUB_TOKEN>"),
    ("google_api_key", "key=AIzaSyA" + "b1C2d" * 6 + "12", "<GOOGLE_API_KEY>"),
    ("jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
     "<JWT>"),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\n-----END OPENSSH PRIVATE KEY-----",
     "<PRIVATE_KEY>"),
]

NEGATIVE = [
    "card 4111 1111 1111 1112 is Luhn-invalid",
    "number 1234 5678 9012 3456 fails Luhn",
    "IBAN DE89 3704 0044 0532 0130 01 has a wrong check",
    "GB00WEST12345698765432 is not an IBAN",
    "XX89370400440532013000 has no country",
    "released 2024-03-15 at 14:30:00, version 1.2.3.4567",
    "octets 999.300.1.1 are out of range",
    "std::vector<int> and a::b are C++",
    "MAC 00:1A:2B:3C:4D:5E is hardware",
    "use sk-learn, task-management-system-for-small-teams",
    "the @channel mention and user@localhost",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "sha 9f86d081884c7d659a2feaf0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "AKIA is a prefix but AKIASHORT is too short",
    "between 2019 and 2023 revenue grew 35%",
]


@pytest.mark.parametrize(("name", "text", "placeholder"), POSITIVE, ids=[p[0] for p in POSITIVE])
def test_detector_masks_its_entity(name: str, text: str, placeholder: str) -> None:
    """Each detector replaces its entity with its typed placeholder, alone and among all detectors."""
    counts: dict[str, int] = {}
    masked = Scanner((name,)).mask(text, counts)
    assert placeholder in masked and counts == {name: 1}
    assert placeholder in ALL.mask(text)


@pytest.mark.parametrize("text", NEGATIVE)
def test_lookalikes_are_left_alone(text: str) -> None:
    """Luhn-invalid cards, non-IBANs, dates, versions, hashes and code are not masked."""
    assert ALL.mask(text) == text


def test_private_key_in_json_and_cut_short() -> None:
    """A key block inside JSON (escaped newlines) is masked, and so is one cut off before its END line."""
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----"
    assert ALL.mask(json.dumps({"content": f"key:\n{block}\nthanks"})) == '{"content": "key:\\n<PRIVATE_KEY>\\nthanks"}'
    assert ALL.mask("here -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI") == "here <PRIVATE_KEY>"


def test_secret_wins_over_overlapping_entities() -> None:
    """Digits inside a key are not reported again as a phone number or a card."""
    counts: dict[str, int] = {}
    ALL.mask("key AKIA2345678901234567 and sk-" + "1234567890" * 3 + "abc", counts)
    assert counts == {"aws_access_key": 1, "openai_key": 1}


def test_non_ascii_text_keeps_its_characters() -> None:
    """Masking works on UTF-8 offsets and leaves the surrounding non-ASCII text intact."""
    assert ALL.mask("Grüße an jürgen@example.de — 電話 +49 30 1234567") == "Grüße an <EMAIL> — 電話 <PHONE>"


def test_secret_scanner_leaves_pii() -> None:
    """The secrets-only scanner (used on non-content attributes) does not touch e-mails or numbers."""
    text = "mail a@example.com card 4111111111111111 key AKIAIOSFODNN7EXAMPLE"
    assert Scanner(SECRET_DETECTORS).mask(text) == "mail a@example.com card 4111111111111111 key <AWS_ACCESS_KEY>"


def test_checksums() -> None:
    """Luhn and IBAN mod-97 checks accept known-good numbers and reject one-digit changes."""
    assert luhn_valid(b"4111111111111111") and not luhn_valid(b"4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # wrong length


def _luhn_reference(digits: bytes) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        d -= 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@given(st.text(alphabet="0123456789", min_size=1, max_size=25))
@settings(max_examples=500, deadline=None)
def test_luhn_matches_the_digit_loop(digits: str) -> None:
    """The table-driven Luhn check agrees with the textbook loop."""
    assert luhn_valid(digits.encode()) == _luhn_reference(digits.encode())


@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEF:", max_size=45),
                 st.text(alphabet="0af:", max_size=45),
                 st.text(alphabet="0a:.1", max_size=45),
                 st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))))
@settings(max_examples=1000, deadline=None)
def test_ipv6_check_agrees_with_ipaddress(token: str) -> None:
    """The hand-written IPv6 check accepts exactly what ``ipaddress`` accepts (on hex, ':' and '.')."""
    try:
        ipaddress.IPv6Address(token)
        expected = True
    except ValueError:
        expected = False
    assert ipv6_valid(token.encode()) == expected


def test_unknown_detector_is_refused() -> None:
    """Asking for a detector that does not exist fails when the scanner is built."""
    with pytest.raises(ValueError, match="nosuch"):
        Scanner(("email", "nosuch"))


@settings(max_examples=200, deadline=None)
@given(local=st.from_regex(r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True),
       domain=st.from_regex(r"[a-z][a-z0-9-]{0,15}[a-z0-9]\.(com|org|io|de|co\.uk)", fullmatch=True),
       before=st.sampled_from(["", " ", "mail ", "<", "(", '"', "\n", "é "]),
       after=st.sampled_from(["", " ", ".", ">", ")", '"', ", thanks", "\n"]))
def test_any_email_is_masked(local: str, domain: str, before: str, after: str) -> None:
    """Whatever its local part, domain and surroundings, an e-mail address does not survive masking."""
    address = f"{local}@{domain}"
    masked = ALL.mask(before + address + after)
    assert address not in masked and "<EMAIL>" in masked


@settings(max_examples=200, deadline=None)
@given(body=st.lists(st.integers(0, 9), min_size=14, max_size=14), sep=st.sampled_from(["", " ", "-"]))
def test_any_luhn_valid_visa_is_masked(body: list[int], sep: str) -> None:
    """Every Luhn-valid 16-digit Visa number is masked, plain or grouped by four."""
    digits = "4" + "".join(map(str, body))
    check = next(c for c in "0123456789" if luhn_valid((digits + c).encode()))
    number = digits + check
    text = f"card {sep.join(number[i:i + 4] for i in range(0, 16, 4))} ok"
    assert ALL.mask(text) == "card <CREDIT_CARD> ok"


def test_corpus_recall_and_no_leaks() -> None:
    """On the labelled corpus, e-mail, card and key formats are found with recall >= 0.99 and never leak."""
    found: dict[str, list[bool]] = {}
    for line in CORPUS.read_text().splitlines():
        sample = json.loads(line)
        masked = ALL.mask(sample["text"])
        for e in sample["entities"]:
            found.setdefault(e["type"], []).append(e["value"] not in masked)
    for name in ("email", "credit_card", *SECRET_DETECTORS):
        hits = found[name]
        assert sum(hits) / len(hits) >= 0.99, name


def test_gates_never_hide_an_entity() -> None:
    """A gate only skips work: every entity of the corpus is also found by each finder ungated,
    and the scanner's ``gate`` regex finds an anchor in every text that holds an entity."""
    from llm_cost_tracker.transforms._detectors import DETECTORS, SHAPE

    samples = [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]
    secrets = Scanner(SECRET_DETECTORS)
    for text in samples + [text[i:] for text in samples[:300] for i in (1, 7, 40)]:
        data = text.encode()
        found = ALL.find(data)
        ungated: set[tuple[int, int, str]] = set()
        shape = data.translate(SHAPE)
        for det in DETECTORS:
            ungated.update((s, e, det.name) for s, e in det.find(data, shape))
        for s, e, det in found:
            assert (s, e, det.name) in ungated or det.name in ("phone", "credit_card", "iban", "ipv4", "ipv6")
        if found:
            assert ALL.gate.search(text)
        if secrets.find(data):
            assert secrets.gate.search(text)


@given(st.text(alphabet="0123456789 -.:@()+/_abcdefABCDEFskAIzaeyJghpKIA\né", max_size=120))
@settings(max_examples=300, deadline=None)
def test_gated_scan_matches_ungated_finders(text: str) -> None:
    """On any text, what the gated scanner finds is found by the finders run without gates."""
    from llm_cost_tracker.transforms._detectors import DETECTORS, SHAPE

    data = text.encode()
    shape = data.translate(SHAPE)
    found = ALL.find(data)
    every = {(s, e, d.name) for d in DETECTORS for s, e in d.find(data, shape)}
    for s, e, det in found:
        if det.secret:
            assert (s, e, det.name) in every
    # each detector alone (no overlap resolution): gated == ungated
    for det in DETECTORS:
        alone = Scanner((det.name,))
        assert [(s, e) for s, e, _ in alone.find(data)] == sorted(set(det.find(data, shape))) or len(data) < alone.min_length


def _corpus_texts() -> list[str]:
    return [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]


@given(st.text(alphabet="0123456789 -.()/+:_aAé", max_size=80))
@settings(max_examples=500, deadline=None)
def test_cluster_plan_reads_only_its_context(text: str) -> None:
    """A cluster's plan, worked out from its context alone (what is kept per context), is the one
    worked out from the whole shape: the checks read nothing further away."""
    from llm_cost_tracker.transforms import _numbers

    shape = text.encode().translate(SHAPE)
    for m in _numbers.CLUSTER.finditer(shape):
        cs, ce = m.span()
        lo = max(0, cs - _numbers._BEFORE)
        local = _numbers._plan(shape[lo:ce + _numbers._AFTER], cs - lo, ce - lo)
        whole = _numbers._plan(shape, cs, ce)
        assert [[(s + lo, e + lo) for s, e in kind] for kind in local] == [list(kind) for kind in whole]


@given(st.text(alphabet="0123456789 AZaz-_.", max_size=90), st.integers(0, 40))
@settings(max_examples=500, deadline=None)
def test_iban_plan_reads_only_its_context(text: str, want: int) -> None:
    """The same for the shape checks of an IBAN candidate: their outcome depends only on the bytes kept
    as its key (the byte before ``AA00`` to the first byte after the run of ``A``, ``0`` and spaces)."""
    from llm_cost_tracker.transforms import _finders

    shape = text.encode().translate(SHAPE)
    start = shape.find(b"AA00")
    while start >= 0:
        lo = start - 1 if start else 0
        key = shape[lo:_finders._IBAN_RUN.match(shape, start + 4, start + 66).end() + 1]
        local = _finders._iban_plan(key, start - lo, want)
        whole = _finders._iban_plan(shape, start, want)
        shifted = None if local is None else (local[0] + lo, local[1] + lo if local[1] >= 0 else -1)
        assert shifted == whole
        start = shape.find(b"AA00", start + 1)


def test_findings_do_not_depend_on_the_plan_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cold caches, warm caches and caches cleared at every entry give the same findings."""
    from llm_cost_tracker.transforms import _finders, _numbers

    texts = _corpus_texts()
    texts += [t[::-1] for t in texts[:200]] + [t.upper() for t in texts[:200]]

    def scan() -> list[list[tuple[int, int, str]]]:
        return [[(s, e, d.name) for s, e, d in ALL.find(t.encode())] for t in texts]

    _numbers._PLANS.clear()
    _finders._IBAN_PLANS.clear()
    cold, warm = scan(), scan()
    assert cold == warm
    monkeypatch.setattr(_numbers, "_PLANS_MAX", 1)
    monkeypatch.setattr(_finders, "_IBAN_PLANS_MAX", 1)
    _numbers._PLANS.clear()
    _finders._IBAN_PLANS.clear()
    assert scan() == cold
    assert len(_numbers._PLANS) <= 1 and len(_finders._IBAN_PLANS) <= 1


@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=3), min_size=4, max_size=4))
@settings(max_examples=500, deadline=None)
def test_ipv4_octets_regex_matches_the_int_check(octets: list[str]) -> None:
    """The octet regex accepts exactly 0-255 without leading zeros, as ``int`` and ``startswith`` do."""
    from llm_cost_tracker.transforms._numbers import _IPV4_VALUE

    token = ".".join(octets).encode()
    expected = all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in octets)
    assert (_IPV4_VALUE.fullmatch(token) is not None) == expected


@given(st.sampled_from(sorted(IBAN_LENGTHS)), st.data())
@settings(max_examples=500, deadline=None)
def test_iban_check_matches_the_textbook_formula(country: str, data: st.DataObject) -> None:
    """The mod-97 check (digits-only fast path or letters) agrees with letters-to-numbers then int % 97."""
    body = data.draw(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                             min_size=IBAN_LENGTHS[country] - 2, max_size=IBAN_LENGTHS[country] - 2))
    compact = country + body
    expected = int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1
    assert iban_valid(compact) == expected


def test_email_with_a_long_non_ascii_local_part_masks_whole_characters() -> None:
    # the 64-byte look-back used to start inside a 2-byte character, and mask() raised UnicodeDecodeError
    scanner = Scanner(DETECTOR_NAMES)
    for filler in ("é" * 40, "x" + "é" * 40, "日本語" * 30, "a😀" * 20):
        text = f"write to {filler}@example.com please"
        masked = scanner.mask(text)
        assert masked.endswith("<EMAIL> please"), masked
        assert "@" not in masked and masked.startswith("write to ")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aé日😀.-_ @0123456789+()ABkseyJ:")), max_size=200))
def test_mask_never_fails_and_keeps_text_without_entities(text: str) -> None:
    scanner = Scanner(DETECTOR_NAMES)
    masked = scanner.mask(text)  # must not raise, whatever the characters around a match
    if not scanner.find(text.encode("utf-8", "surrogatepass")):
        assert masked == text
