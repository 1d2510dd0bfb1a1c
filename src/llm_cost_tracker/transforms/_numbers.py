"""Cards, IPv4 addresses and phone numbers, found together inside the *clusters* of the shape.

Each of these entities is 7 bytes or more of digits and ``' ().-/'``, from a digit to a digit, so it
lies inside a match of :data:`CLUSTER` in the shape, and one search finds the clusters for all three.
Most of what decides a candidate depends on the shape alone: where the card, IPv4 and phone regexes
match inside the cluster, the bytes around each match, the digit groups. That part is a *plan*, worked
out once per cluster shape and kept (:data:`_PLANS`: number formats repeat). A cluster then costs a dict
look-up plus the checks that need the digits themselves: issuer prefix and Luhn for a card, octet
values for an IPv4 address (a phone number needs none).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from llm_cost_tracker.transforms._checks import BRAND_LENGTHS, CARD_GROUPINGS, luhn_valid
from llm_cost_tracker.transforms._finders import WORD, Span

CLUSTER = re.compile(rb"0[0 ().\-/]{5,}0")
"""In the shape: holds every match of the card, IPv4 and phone regexes."""
_CARD_RE = re.compile(rb"0000(?:[ \-]?0){9,15}")
_IPV4_RE = re.compile(rb"00{0,2}\.00{0,2}\.00{0,2}\.00{0,2}")
_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0 to 255, no leading zero
_IPV4_VALUE = re.compile(rb"\.".join([_OCTET] * 4))
_PHONE_RE = re.compile(rb"0[0 ().\-/]{5,22}0")
_DATE_LIKE = re.compile(rb"0000[-/.]00?[-/.]00?|00?[-/.]00?[-/.]00(?:00)?")
_DIGITS = re.compile(rb"0+")
_PHONE_BEFORE = frozenset(WORD | set(b"+./"))
_PHONE_AFTER = frozenset(b".-/")

Plan = tuple[tuple[Span, ...], tuple[Span, ...], tuple[Span, ...]]
"""Card, IPv4 and phone candidates of one cluster that pass every check on the shape (offsets in the
cluster's context)."""
_BEFORE, _AFTER = 4, 2
"""Bytes around a cluster that the checks read: a phone number's ``(+(`` and the byte before it; the
byte after an entity and, for IPv4 addresses and phone numbers, the one after that."""
_PLANS: dict[bytes | tuple[bytes, int, int], Plan] = {}
_PLANS_MAX = 4096
_PLANNED_LENGTH = 64
"""Longer clusters are planned every time (the plans stay small, whatever the input)."""


def _plan(shape: bytes, cs: int, ce: int) -> Plan:
    """The shape-only checks for the cluster ``shape[cs:ce]`` (``shape`` may be just its context)."""
    size = len(shape)
    cards = []
    if ce - cs >= 13 and shape.count(b"0", cs, ce) >= 13:
        for m in _CARD_RE.finditer(shape, cs, ce):
            start, end = m.span()
            if (start and shape[start - 1] in WORD) or (end < size and shape[end] in WORD):
                continue
            token = shape[start:end]
            groups = token.replace(b"-", b" ").split(b" ")
            if len(groups) > 1 and (b" " in token and b"-" in token or tuple(map(len, groups)) not in CARD_GROUPINGS):
                continue
            cards.append((start, end))
    ipv4s = []
    if shape.count(b".", cs, ce) >= 3:
        for m in _IPV4_RE.finditer(shape, cs, ce):
            start, end = m.span()
            if start and (shape[start - 1] in WORD or shape[start - 1] == 46):
                continue
            if end < size and (shape[end] in WORD or (shape[end] == 46 and shape[end + 1:end + 2] == b"0")):
                continue
            ipv4s.append((start, end))
    phones = []
    # a cluster of up to 24 bytes is one match of _PHONE_RE; a longer one is cut into several
    for start, end in ((cs, ce),) if ce - cs <= 24 else [m.span() for m in _PHONE_RE.finditer(shape, cs, ce)]:
        # the cheapest rejections first: most candidates are bare digit runs, dates or versions
        after = shape[end] if end < size else 0
        if after in WORD or (after in _PHONE_AFTER and shape[end + 1:end + 2] == b"0"):
            continue
        # take in a leading '(' / '+' / '(+'
        if start and shape[start - 1] == 40:
            start -= 1
        if start and shape[start - 1] == 43:
            start -= 1
        if start and shape[start - 1] == 40:
            start -= 1
        if start and shape[start - 1] in _PHONE_BEFORE:
            continue
        token = shape[start:end]
        digits = token.count(b"0")
        international = token[0] == 43 or token.startswith(b"(+")
        if not 7 <= digits <= 15 or (digits >= 13 and not international):
            continue
        if b"/" in token or token.count(b"(") != token.count(b")"):
            continue
        groups = _DIGITS.findall(token)
        longest = len(max(groups))
        if not international:
            if len(groups) < 2 or len(groups) * 4 == digits == longest * len(groups) or _DATE_LIKE.fullmatch(token):
                continue
            if b"." in token and len(groups) != 3:
                continue  # 1.2.3.4.5: version-ish
        if longest < 3 and not (international and len(groups) >= 4):  # +33 6 12 34 56 78
            continue
        phones.append((start, end))
    return tuple(cards), tuple(ipv4s), tuple(phones)


_NOTHING: tuple[Sequence[Span], ...] = ((), (), ())


def numbers(text: bytes, shape: bytes, card: bool = True, ipv4: bool = True,
            phone: bool = True) -> tuple[Sequence[Span], ...]:
    """The validated cards, IPv4 addresses and phone numbers of ``text`` (each only when asked for)."""
    m = CLUSTER.search(shape)
    if m is None:
        return _NOTHING
    cards: list[Span] = []
    ipv4s: list[Span] = []
    phones: list[Span] = []
    while m is not None:
        cs, ce = m.span()
        lo = cs - _BEFORE if cs > _BEFORE else 0
        if ce - cs <= _PLANNED_LENGTH:
            context = shape[lo:ce + _AFTER]
            key: bytes | tuple[bytes, int, int] = context  # the cluster sits _BEFORE and _AFTER bytes inside
            if cs - lo != _BEFORE or len(context) != ce - lo + _AFTER:  # (near an end of the text)
                key = (context, cs - lo, ce - lo)
            plan = _PLANS.get(key)
            if plan is None:
                if len(_PLANS) >= _PLANS_MAX:
                    _PLANS.clear()
                plan = _PLANS[key] = _plan(context, cs - lo, ce - lo)
        else:
            plan = _plan(shape[lo:ce + _AFTER], cs - lo, ce - lo)
        card_plan, ipv4_plan, phone_plan = plan
        if card and card_plan:
            for start, end in card_plan:
                digits = text[lo + start:lo + end].translate(None, b" -")
                if len(digits) in BRAND_LENGTHS[digits[:2]] and luhn_valid(digits):
                    cards.append((lo + start, lo + end))
        if ipv4 and ipv4_plan:
            for start, end in ipv4_plan:
                if _IPV4_VALUE.fullmatch(text, lo + start, lo + end):
                    ipv4s.append((lo + start, lo + end))
        if phone and phone_plan:
            for start, end in phone_plan:
                phones.append((lo + start, lo + end))
        m = CLUSTER.search(shape, ce)
    return cards, ipv4s, phones


def find_card(text: bytes, shape: bytes) -> list[Span]:
    return list(numbers(text, shape, ipv4=False, phone=False)[0])


def find_ipv4(text: bytes, shape: bytes) -> list[Span]:
    return list(numbers(text, shape, card=False, phone=False)[1])


def find_phone(text: bytes, shape: bytes) -> list[Span]:
    return list(numbers(text, shape, card=False, ipv4=False)[2])
