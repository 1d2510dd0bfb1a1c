"""Entity detectors of the redaction stage, in priority order, and :class:`Scanner`, which runs them.

The finders (:mod:`._finders`, :mod:`._numbers`) cost a few tenths of a microsecond even when they
find nothing, and a short value pays that for every detector, so :meth:`Scanner.find` runs each only
when its *gate* passes: a substring test on the text or on its shape, most of them a single byte
(``memchr``). A gate is necessary for an entity, never sufficient, so it only skips work. Where two
detectors claim overlapping text, the one earlier in :data:`DETECTORS` wins (secrets first, phone
numbers last). Offsets are byte offsets in the UTF-8 text.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from llm_cost_tracker.transforms import _finders as f
from llm_cost_tracker.transforms import _numbers as n
from llm_cost_tracker.transforms._checks import IBAN_LENGTHS, iban_valid, ipv6_valid, luhn_valid
from llm_cost_tracker.transforms._finders import SHAPE, Finder, Span
from llm_cost_tracker.transforms._numbers import CLUSTER

_Text = TypeVar("_Text", str, bytes)

__all__ = ["CARD", "CLUSTER", "DETECTORS", "DETECTOR_NAMES", "IBAN_LENGTHS", "NEVER_CLEAR", "SECRET_DETECTORS",
           "SHAPE", "Detector", "Scanner", "iban_valid", "ipv6_valid", "luhn_valid"]


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of entity.

    Args:
        name: metric label and config name (``email``).
        placeholder: what mask mode writes instead of the entity (``<EMAIL>``).
        secret: True for credentials (scanned in every string attribute by default).
        find: the (start, end) byte offsets of each validated entity in ``(text, shape)``, on its own
            (the scanner calls the finders itself, after their gates).
        anchor: regex (``str``) that matches somewhere in every entity: the detectors' anchors, joined,
            make :attr:`Scanner.gate`.
    """

    name: str
    placeholder: str
    secret: bool
    find: Finder
    anchor: str
    token: bytes = field(init=False, repr=False, compare=False)
    """``placeholder`` as UTF-8."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", self.placeholder.encode())


DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "<PRIVATE_KEY>", True, f.find_pem, "-----BEGIN"),
    Detector("jwt", "<JWT>", True, f.find_jwt, "eyJ"),
    Detector("anthropic_key", "<ANTHROPIC_KEY>", True, f.find_anthropic, "sk-"),
    Detector("openai_key", "<OPENAI_KEY>", True, f.find_openai, "sk-"),
    Detector("aws_access_key", "<AWS_ACCESS_KEY>", True, f.find_aws, "A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)"),
    Detector("github_token", "<GITHUB_TOKEN>", True, f.find_github, "gh[pousr]_|github_pat_"),
    Detector("google_api_key", "<GOOGLE_API_KEY>", True, f.find_google, "AIza"),
    Detector("email", "<EMAIL>", False, f.find_email, "@"),
    Detector("credit_card", "<CREDIT_CARD>", False, n.find_card, "[0-9]"),
    Detector("iban", "<IBAN>", False, f.find_iban, "[A-Z][A-Z][0-9]"),
    Detector("ipv4", "<IPV4>", False, n.find_ipv4, "[0-9]"),
    Detector("ipv6", "<IPV6>", False, f.find_ipv6, ":"),
    Detector("phone", "<PHONE>", False, n.find_phone, "[0-9]"),
)
"""Every detector, in priority order (an earlier one wins overlapping text)."""

DETECTOR_NAMES = tuple(d.name for d in DETECTORS)
_CARD_SHAPE = re.compile(rb"0000[ \-]?0000[ \-]?00")
SECRET_DETECTORS = tuple(d.name for d in DETECTORS if d.secret)
CARD = "credit_card"
NEVER_CLEAR = (*SECRET_DETECTORS, CARD)
"""Detectors of what is never stored, labelled, logged or echoed in clear: keys, tokens and (PCI DSS) card
numbers. Names and attribute keys are scanned for these, and every value at least for cards."""
(_PEM, _JWT, _ANTHROPIC, _OPENAI, _AWS, _GITHUB, _GOOGLE,
 _EMAIL, _CARD, _IBAN, _IPV4, _IPV6, _PHONE) = DETECTORS


def _add(found: list[tuple[int, int, Detector]], hits: Sequence[Span], det: Detector) -> None:
    """Adds each of ``hits`` that overlaps nothing in ``found`` (found by detectors that come first)."""
    for start, end in hits:
        for s, e, _ in found:
            if s < end and start < e:
                break
        else:
            found.append((start, end, det))


def _blank(shape: bytes, found: list[tuple[int, int, Detector]]) -> bytes:
    """``shape`` with the bytes of each entity in ``found`` set to 0 (no detector matches those)."""
    if len(found) == 1:  # the common case, in half the time
        s, e, _ = found[0]
        return shape[:s].ljust(e, b"\0") + shape[e:]
    hidden = bytearray(shape)
    for s, e, _ in found:
        hidden[s:e] = bytes(e - s)
    return bytes(hidden)


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _owners(texts: Sequence[str], positions: list[int], size: Callable[[str], int]) -> list[int]:
    """For each position in ``texts`` joined by newlines (measured by ``size``), the index of its text."""
    if not positions:
        return []
    ends = list(itertools.accumulate(size(t) + 1 for t in texts))  # one past each text's newline
    return [bisect.bisect_right(ends, position) for position in positions]


def _lines(joined: _Text, newline: _Text, positions: list[int]) -> list[int]:
    """For each of the ascending ``positions`` in ``joined``, the newlines before it: the index of its text
    when no text holds a newline of its own. Why: :func:`_owners` measures every text (a Python step per
    text, ~0.1 us each, for a few positions among thousands of values); counting newlines is a C loop."""
    out = []
    line = previous = 0
    for position in positions:
        line += joined.count(newline, previous, position)
        previous = position
        out.append(line)
    return out


class Scanner:
    """Finds and replaces the entities of a fixed set of detectors (built once, then only called).

    Args:
        names: detector names to run, in any order (priority stays that of :data:`DETECTORS`).
    """

    __slots__ = ("_detectors", "_on", "_personal", "min_length", "gate", "_card_gate", "_anchors")

    def __init__(self, names: tuple[str, ...] | frozenset[str]) -> None:
        wanted = set(names)
        unknown = wanted - set(DETECTOR_NAMES)
        if unknown:
            raise ValueError(f"unknown detectors: {', '.join(sorted(unknown))}")
        self._detectors = tuple(d for d in DETECTORS if d.name in wanted)
        self._on = tuple(d.name in wanted for d in DETECTORS)
        self._personal = any(not d.secret for d in self._detectors)
        self.min_length = 6 if any(not d.secret and d.name != CARD for d in self._detectors) else (
            13 if CARD in wanted else 20)
        """Shorter texts cannot hold an entity of these detectors and are not scanned."""
        # Cards alone (the default scan: secrets and cards) are gated on the shape instead: a class-led
        # branch in the gate regex costs 1.2 us on 40 bytes, 4x the literal anchors of the keys.
        self._card_gate = CARD in wanted and not any(d.anchor == "[0-9]" for d in self._detectors if d.name != CARD)
        anchors = sorted({d.anchor for d in self._detectors if not (self._card_gate and d.name == CARD)})
        self.gate = re.compile("|".join(anchors) if anchors else "(?!)")
        """Finds nothing in a ``str`` that holds no entity but a card (:meth:`maybe` covers cards)."""
        self._anchors = ((self.gate,) if any(a.startswith("[") for a in anchors) else
                         tuple(re.compile(a) for a in anchors))
        """What :meth:`flag` searches: the gate's branches one by one when each starts with a literal. CPython's
        engine looks for a literal prefix with a fast C loop, but for an alternation it tries every branch at
        each byte that starts one (``-``, ``e``, ``s``... are everywhere): 2.5x slower over a request's values."""

    def maybe(self, text: str) -> bool:
        """False when ``text`` holds no entity of these detectors (a cheap pre-check for many short values).

        The gate regex, and for cards the shape: 4 digits, a separator or none, 4 more, one or none, 2
        more (CARD_GROUPINGS: the first group has 4 digits, the second 4 or 6), found with ``bytes.find``
        and a literal-led regex: ids and dates (8 digits) do not pass.
        """
        if self.gate.search(text) is not None:
            return True
        if not self._card_gate:
            return False
        shape = text.encode("utf-8", "surrogatepass").translate(SHAPE)
        # a card has 13 digits or more (most text has fewer: one C count), in the grouping of _CARD_SHAPE
        return shape.count(b"0") >= 13 and _CARD_SHAPE.search(shape) is not None

    def flag(self, texts: Sequence[str]) -> list[int]:
        """Indexes of the ``texts`` for which :meth:`maybe` of a text that contains one of them may be true.

        One search of the gate (and of the card shape) over the texts joined by newlines, which no anchor
        and no card shape contains, so every match lies within one text. Per text the 13-digit count of
        cards is not asked (it is a property of a whole text, which may hold more than this one), so this
        says "maybe" at least wherever :meth:`maybe` of the texts joined would: a text not flagged adds
        nothing :meth:`maybe` could find.
        """
        if not texts:
            return []
        joined = "\n".join(texts)
        anchors = self._anchors
        if len(anchors) == 1:
            starts = [m.start() for m in anchors[0].finditer(joined)]
        else:  # each branch's matches (a match of the whole gate is one of them, or overlaps one in its text)
            starts = sorted([m.start() for anchor in anchors for m in anchor.finditer(joined)])
        cards: list[int] = []
        shape = b""
        if self._card_gate:
            shape = joined.encode("utf-8", "surrogatepass").translate(SHAPE)  # newlines stay newlines
            cards = [m.start() for m in _CARD_SHAPE.finditer(shape)]  # byte offsets: characters only if ASCII
        if not starts and not cards:
            return []
        if joined.count("\n") == len(texts) - 1:  # no text holds a newline: the n-th one ends text n
            flagged = set(_lines(joined, "\n", starts))
            flagged.update(_lines(shape, b"\n", cards))
        else:
            flagged = set(_owners(texts, starts, len))
            flagged.update(_owners(texts, cards, len if len(shape) == len(joined) else _utf8_length))
        return sorted(flagged)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._detectors)

    def find(self, data: bytes, text: str | None = None) -> list[tuple[int, int, Detector]]:
        """Non-overlapping entities in UTF-8 ``data`` as byte offsets, sorted by position.

        ``text`` is ``data`` decoded, when the caller has it (only its ASCII substrings are looked at).
        """
        if len(data) < self.min_length:
            return []
        return self._find(data, data.decode("latin-1") if text is None else text)  # the same ASCII substrings

    def _find(self, data: bytes, text: str) -> list[tuple[int, int, Detector]]:
        """:meth:`find` of a ``data`` long enough to scan, with its ``text``.

        The detectors run in priority order, each behind its gate. Single bytes first: ``c in text``
        (``str``) and ``48 in shape`` (an int in ``bytes``) are a ``memchr``, about 15 ns on 300 bytes;
        a longer needle costs 60-170 ns (with ``bytes.find``: ``in`` with a ``bytes`` needle costs
        90 ns more). Cards, IPv4 addresses and phone numbers are found together (:func:`._numbers.numbers`).
        """
        pem, jwt, anthropic, openai, aws, github, google, email, card, iban, ipv4, ipv6, phone = self._on
        shape = data.translate(SHAPE)
        found: list[tuple[int, int, Detector]] = []
        hits: Sequence[Span]
        dash = "-" in text
        if pem and dash and "-----BEGIN" in text:
            if hits := f.find_pem(data, shape):
                _add(found, hits, _PEM)
        if jwt and "J" in text and "eyJ" in text:
            if hits := f.find_jwt(data, shape):
                _add(found, hits, _JWT)
        if (anthropic or openai) and dash and "sk-" in text:
            if anthropic and "sk-ant-" in text:
                if hits := f.find_anthropic(data, shape):
                    _add(found, hits, _ANTHROPIC)
            if openai:
                if hits := f.find_openai(data, shape):
                    _add(found, hits, _OPENAI)
        if aws and (i := shape.find(b"AAAA")) >= 0:  # (a key id starts with 4 capitals)
            if hits := f.find_aws(data, shape, i):
                _add(found, hits, _AWS)
        if github and "_" in text:
            if hits := f.find_github(data, shape):
                _add(found, hits, _GITHUB)
        if google and "z" in text and "AIza" in text:
            if hits := f.find_google(data, shape):
                _add(found, hits, _GOOGLE)
        # Personal data. Numbers inside an entity already found are not looked at again: the shape
        # is blanked once, before the first detector from here on that has something found before it.
        blanked = bool(found) and self._personal
        digits = True
        if blanked:
            if len(found) == 1 and shape.find(b"0", 0, found[0][0]) < 0 and shape.find(b"0", found[0][1]) < 0:
                digits = False  # none outside the one key found: no need to blank it
            else:
                shape = _blank(shape, found)
        if email and "@" in text:
            if hits := f.find_email(data, shape):
                _add(found, hits, _EMAIL)
        if not digits or 48 not in shape:  # every detector below needs a digit
            if len(found) > 1:
                found.sort()
            return found
        numbers: tuple[Sequence[Span], ...] = ()
        numbers_of = b""  # the shape `numbers` were found in: found again if blanked since
        if card:
            if found and not blanked:
                shape, blanked = _blank(shape, found), True
            numbers, numbers_of = n.numbers(data, shape, card, ipv4, phone), shape
            if hits := numbers[0]:
                _add(found, hits, _CARD)
        if iban and shape.find(b"AA00") >= 0:
            if found and not blanked:
                shape, blanked = _blank(shape, found), True
            if hits := f.find_iban(data, shape):
                _add(found, hits, _IBAN)
        if ipv4 and "." in text:
            if found and not blanked:
                shape, blanked = _blank(shape, found), True
            if numbers_of is not shape:
                numbers, numbers_of = n.numbers(data, shape, card, ipv4, phone), shape
            if hits := numbers[1]:
                _add(found, hits, _IPV4)
        if ipv6 and ":" in text and (seed := f.IPV6_SEED.search(data)) is not None:
            if found and not blanked:
                shape, blanked = _blank(shape, found), True
            if hits := f.find_ipv6(data, shape, seed):
                _add(found, hits, _IPV6)
        if phone:
            if found and not blanked:
                shape = _blank(shape, found)
            if numbers_of is not shape:
                numbers = n.numbers(data, shape, card, ipv4, phone)
            if hits := numbers[2]:
                _add(found, hits, _PHONE)
        if len(found) > 1:
            found.sort()  # starts differ: entities do not overlap
        return found

    def mask(self, text: str, counts: dict[str, int] | None = None) -> str:
        """``text`` with each entity replaced by its placeholder; adds per-detector counts to ``counts``."""
        if len(text) < self.min_length:
            return text
        ascii = text.isascii()  # (a flag of the str): then byte offsets are character offsets
        data = text.encode() if ascii else text.encode("utf-8", "surrogatepass")
        found = self._find(data, text)
        if not found:
            return text
        if counts is not None:
            for _, _, det in found:
                counts[det.name] = counts.get(det.name, 0) + 1
        if ascii:
            if len(found) == 1:
                start, end, det = found[0]
                return text[:start] + det.placeholder + text[end:]
            pos = 0
            parts: list[str] = []
            for start, end, det in found:
                parts += text[pos:start], det.placeholder
                pos = end
            parts.append(text[pos:])
            return "".join(parts)
        out: list[bytes] = []
        pos = 0
        for start, end, det in found:
            out += data[pos:start], det.token
            pos = end
        out.append(data[pos:])
        return b"".join(out).decode("utf-8", "surrogatepass")
