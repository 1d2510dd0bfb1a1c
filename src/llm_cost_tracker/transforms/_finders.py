"""Finders of secrets, e-mail addresses, IBANs and IPv6 addresses: ``(text, shape) -> [(start, end)]``.

A finder searches the UTF-8 ``text`` or its *shape* (:data:`SHAPE`: every digit ``0``, every letter
``A`` or ``a``) with a regex that starts with a literal, which CPython's engine finds with a plain C
loop, then checks each candidate in Python (:mod:`._checks`). Finders return lists and loop on
``search`` (no generator, no ``finditer`` object: two searches cost less than one iterator). Cards,
IPv4 addresses and phone numbers are in :mod:`._numbers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from llm_cost_tracker.transforms._checks import IBAN_BYTES_LENGTHS, iban_mod97, ipv6_valid

Span = tuple[int, int]
Finder = Callable[[bytes, bytes], list[Span]]
"""(text, shape) -> (start, end) of each validated entity, in the order found."""


class TextFinder(Protocol):
    """A :data:`Finder` that may be told where to start (``pos``), when no entity can start before it."""

    def __call__(self, text: bytes, shape: bytes, pos: int = 0, /) -> list[Span]: ...


def _shape_table() -> bytes:
    table = bytearray(range(256))
    for c in range(256):
        if 48 <= c <= 57:
            table[c] = 48  # 0
        elif 65 <= c <= 90:
            table[c] = 65  # A
        elif 97 <= c <= 122 or c >= 128:
            table[c] = 97  # a (non-ASCII letters count as word characters)
    return bytes(table)


SHAPE = _shape_table()
WORD = frozenset(b"0Aa_-")
"""Bytes of the shape that continue a token: an entity must not touch one."""


def _text_finder(pattern: bytes, mixed: bool = False, bounded: bool = True) -> TextFinder:
    """A finder for ``pattern`` (searched in the text). ``mixed``: the match must look random, with
    both a digit and a letter (rules out words joined by dashes). ``bounded``: no token character
    may touch it."""
    search = re.compile(pattern).search

    def find(text: bytes, shape: bytes, pos: int = 0) -> list[Span]:
        """``pos``: where to start, when no entity can start before it."""
        if (m := search(text, pos)) is None:
            return []
        out = []
        size = len(shape)
        while m is not None:
            start, pos = m.span()
            m = search(text, pos)  # the next search starts at the end of this match, as finditer does
            if bounded and ((start and shape[start - 1] in WORD) or (pos < size and shape[pos] in WORD)):
                continue
            # (an int is looked for with memchr; a one-byte bytes needle costs about 90 ns more)
            if mixed and not (48 in (token := shape[start:pos]) and (97 in token or 65 in token)):
                continue
            out.append((start, pos))
        return out

    return find


# --- secrets: every pattern starts with a literal ----------------------------------------------

find_anthropic = _text_finder(rb"sk-ant-[A-Za-z0-9_\-]{20,}", mixed=True)
find_openai = _text_finder(rb"sk-(?!ant-)[A-Za-z0-9_\-]{20,}", mixed=True)
find_aws = _text_finder(rb"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}")
find_github = _text_finder(rb"g(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})")
find_google = _text_finder(rb"AIza[0-9A-Za-z_\-]{35}")
find_jwt = _text_finder(rb"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", bounded=False)
# A private key block up to its END line, or to the end of the text when it was cut short. The END
# line is found with a second literal-led search: a lazy ``[\s\S]*?`` costs a step per byte of key.
_PEM_BEGIN = re.compile(rb"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(rb"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")


def _search_from(regex: re.Pattern[bytes], literal: bytes, text: bytes, pos: int) -> re.Match[bytes] | None:
    """``regex.search(text, pos)`` for a regex that starts with ``literal``, found with ``bytes.find``."""
    while (pos := text.find(literal, pos)) >= 0:
        if (m := regex.match(text, pos)) is not None:
            return m
        pos += 1
    return None


def find_pem(text: bytes, shape: bytes) -> list[Span]:
    out = []
    pos = 0
    while (m := _search_from(_PEM_BEGIN, b"-----BEGIN", text, pos)) is not None:
        end_line = _search_from(_PEM_END, b"-----END", text, m.end())
        pos = end_line.end() if end_line is not None else len(text)
        out.append((m.start(), pos))
    return out


# --- e-mail: anchored on the '@', local part found backwards --------------------------------------

_AT_DOMAIN = re.compile(rb"@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![A-Za-z0-9\-])")
_LOCAL = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&*+/=?^_`{|}~-"
          + bytes(range(128, 256)))  # internationalised local parts (RFC 6531); up to 64 of them
_LOCAL_LEAD_JUNK = b".`{|}"


def find_email(text: bytes, shape: bytes) -> list[Span]:
    out = []
    m = _AT_DOMAIN.search(text)
    while m is not None:
        at, end = m.span()
        # the local part: up to 64 bytes of _LOCAL before the '@' (strips in C, not a loop per byte)
        window = at - 64 if at > 64 else 0
        before = text[window:at].rstrip(_LOCAL)
        start = window + len(before)
        # a window cut inside a multi-byte character: start at the next whole character, or the
        # masked text would not decode
        while start < at and 0x80 <= text[start] < 0xC0:
            start += 1
        local = text[start:at].lstrip(_LOCAL_LEAD_JUNK)
        if local:
            out.append((at - len(local), end))
        m = _AT_DOMAIN.search(text, end)
    return out


# --- IBANs and IPv6 addresses ------------------------------------------------------------------

_IBAN_RE = re.compile(rb"AA00(?: ?[A0]){11,30}")
_IBAN_RUN = re.compile(rb"[A0 ]*")
_IBAN_PLANS: dict[tuple[bytes, int], tuple[int, int] | None] = {}
_IBAN_PLANS_MAX = 4096
_UNSEEN: tuple[int, int] = (-2, -2)
"""``_IBAN_PLANS.get`` default: a context not planned yet (compared by identity)."""


def _iban_plan(shape: bytes, start: int, want: int) -> tuple[int, int] | None:
    """Where the IBAN regex match at ``start`` ends and where the IBAN of ``want`` characters ends
    (-1 when it is not one; ``want`` is 0 for an unknown country), from the shape alone; None when
    the regex does not match."""
    m = _IBAN_RE.match(shape, start)
    if m is None:
        return None
    limit = m.end()
    if not want or (start and shape[start - 1] in WORD):
        return limit, -1
    # exactly `want` IBAN characters: the greedy match may run on into a following word. The end is
    # the least `want + spaces before it`, found by counting spaces (C) a few times over.
    end = start + want
    while end <= limit and (spaces := shape.count(b" ", start, end)) != end - start - want:
        end = start + want + spaces
    if end > limit or (end < len(shape) and shape[end] in WORD):
        return limit, -1
    return limit, end


def find_iban(text: bytes, shape: bytes) -> list[Span]:
    """The regex and the checks around it read only the shape from the byte before ``AA00`` to the
    first byte after it that is not ``A``, ``0`` or a space (at most 66 bytes on): their outcome is
    kept per such context (IBAN formats repeat), and only the mod-97 check reads the characters."""
    out = []
    # every match starts with AA00: bytes.find gets there faster than the regex's own search
    start = shape.find(b"AA00")
    while start >= 0:
        want = IBAN_BYTES_LENGTHS.get(text[start:start + 2], 0)
        lo = start - 1 if start else 0
        run = _IBAN_RUN.match(shape, start + 4, start + 66)
        key = (shape[lo:(run.end() if run is not None else start + 4) + 1], want)  # [A0 ]* always matches
        plan = _IBAN_PLANS.get(key, _UNSEEN)
        if plan is _UNSEEN:
            if len(_IBAN_PLANS) >= _IBAN_PLANS_MAX:
                _IBAN_PLANS.clear()
            plan = _iban_plan(key[0], start - lo, want)
            if plan is not None:  # offsets from `start`
                plan = (plan[0] - (start - lo), plan[1] - (start - lo) if plan[1] >= 0 else -1)
            _IBAN_PLANS[key] = plan
        if plan is None:
            start = shape.find(b"AA00", start + 1)
            continue
        limit, end = plan
        if end >= 0 and iban_mod97(text[start:start + end].replace(b" ", b"")):
            out.append((start, start + end))
        start = shape.find(b"AA00", start + limit)  # the next match starts after this one (finditer)
    return out


# Two colons close together are the cheap way into an IPv6 address; the token is then grown both
# ways over hex digits, colons and dots and checked by ipv6_valid.
IPV6_SEED = re.compile(rb":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = b"0123456789abcdefABCDEF:."


def find_ipv6(text: bytes, shape: bytes, first: re.Match[bytes] | None = None) -> list[Span]:
    """``first``: the first seed, when the caller has already looked for it."""
    out = []
    size = len(text)
    m = first or IPV6_SEED.search(text)
    while m is not None:
        start, end = m.span()
        # grown with bytes.rstrip/lstrip (C) over a window rather than a Python loop per byte; a
        # window of nothing but address characters is grown on by the loop
        head = text[max(0, start - 64):start]
        kept = head.rstrip(_IPV6_CHARS)
        start -= len(head) - len(kept)
        if start and head and not kept:
            while start > 0 and text[start - 1] in _IPV6_CHARS:
                start -= 1
        tail = text[end:end + 64]
        kept = tail.lstrip(_IPV6_CHARS)
        end += len(tail) - len(kept)
        if end < size and tail and not kept:
            while end < size and text[end] in _IPV6_CHARS:
                end += 1
        m = IPV6_SEED.search(text, end)  # the next seed: after this token (one inside it is skipped)
        token = text[start:end].rstrip(b".")
        if token.endswith(b":") and not token.endswith(b"::"):
            token = token[:-1]
        end = start + len(token)
        if (start and shape[start - 1] in b"0Aa_") or (end < size and shape[end] in b"0Aa_"):
            continue
        # a digit, a valid address, and two groups or more
        if 48 in shape[start:end] and ipv6_valid(token) and b":" in token.replace(b"::", b":").strip(b":"):
            out.append((start, end))
    return out
