"""Entity detectors of the redaction stage: compiled once at import, run by :class:`Scanner`.

Speed comes from two things. The text is scanned as UTF-8 bytes, and numbers are searched in a
*shape* of it (one ``bytes.translate``: every digit becomes ``0``, every letter ``A`` or ``a``), so
each regex starts with a literal that the regex engine finds with a plain C loop instead of testing
a character class at every position. Secrets are anchored on their literal prefixes (``sk-``,
``AKIA``...) and e-mail addresses on the ``@``, each run only when a substring check finds the
literal. Candidates are then validated in Python (Luhn and issuer prefix for cards, country length
and mod-97 for IBANs, octet ranges for IPv4, group counts for IPv6 (:mod:`ipaddress` only for an embedded
IPv4 part), digit counts and shapes for phone numbers), so a Luhn-invalid card number or a non-IBAN is left as it is.

Where two detectors claim overlapping text, the one earlier in :data:`DETECTORS` wins (secrets
first, phone numbers last). Offsets are byte offsets in the UTF-8 text.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Span = tuple[int, int]
Finder = Callable[[bytes, bytes], Iterator[Span]]
"""(text, shape) -> (start, end) of each validated entity."""


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
_MARK_BYTES = b"@_:-.zykgh"


def _marks_tables() -> tuple[bytes, bytes]:
    table = bytearray(range(256))
    for c in range(256):
        if 48 <= c <= 57:
            table[c] = 48  # 0
        elif 65 <= c <= 90:
            table[c] = 65  # A
    keep = set(range(48, 58)) | set(range(65, 91)) | set(_MARK_BYTES)
    return bytes(table), bytes(c for c in range(256) if c not in keep)


MARKS, MARKS_DELETE = _marks_tables()
"""``text.translate(MARKS, MARKS_DELETE)``: the *marks* of a text, only its digits (as ``0``), upper-case
letters (as ``A``) and the bytes ``@_:-.zykgh``, in order (``eyJ`` leaves ``yA``, ``sk-`` ``k-``, ``ghp_``
and ``github_pat_`` ``gh_``). One C pass over the text; the gates of
:meth:`Scanner.find` are then searches in this short string (as ``str``: much cheaper than ``bytes``)."""
_WORD = frozenset(b"0Aa_-")


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of entity.

    The finder runs on a text only when its gates pass (each is necessary for an entity, never
    sufficient): ``mark`` occurs in the text's marks (:data:`MARKS`), the text has ``min_digits``
    ASCII digits or more, and one of ``triggers`` (if any) occurs in the text.

    Args:
        name: metric label and config name (``email``).
        placeholder: what mask mode writes instead of the entity (``<EMAIL>``).
        secret: True for credentials (scanned in every string attribute by default).
        find: yields the (start, end) byte offsets of each validated entity.
        mark: substring of the marks that every entity leaves (``"@"``, ``"0000"``, ``"AAAA"``).
        min_digits: fewest ASCII digits an entity holds.
        triggers: ASCII substrings of the text one of which every entity holds.
        anchor: regex (``str``) that matches somewhere in every entity: the detectors' anchors, joined,
            make :attr:`Scanner.gate`.
        marks_re: a regex that finds something in the marks of every text holding an entity (a
            stricter gate than ``mark``).
        cluster: every entity lies in a match of :data:`CLUSTER` in the shape (7 or more bytes of
            digits and ``' ().-/'``, from a digit to a digit). The number finders that share this
            gate (cards, IPv4, phone numbers) are skipped together when the shape has no cluster.
    """

    name: str
    placeholder: str
    secret: bool
    find: Finder
    mark: str = ""
    min_digits: int = 0
    triggers: tuple[str, ...] = ()
    anchor: str = ""
    marks_re: re.Pattern[str] | None = None
    cluster: bool = False


def _bounded(shape: bytes, start: int, end: int) -> bool:
    """No token character right before ``start`` or right after ``end``."""
    return (start == 0 or shape[start - 1] not in _WORD) and (end >= len(shape) or shape[end] not in _WORD)


def _mixed(token: bytes) -> bool:
    """Random-looking: has both a digit and a letter (rules out words joined by dashes)."""
    shape = token.translate(SHAPE)
    return b"0" in shape and (b"a" in shape or b"A" in shape)


def _text_finder(pattern: bytes, check: Callable[[bytes], bool] | None = None, bounded: bool = True) -> Finder:
    regex = re.compile(pattern)

    def find(text: bytes, shape: bytes) -> Iterator[Span]:
        for m in regex.finditer(text):
            start, end = m.span()
            if bounded and not _bounded(shape, start, end):
                continue
            if check is not None and not check(m.group()):
                continue
            yield start, end

    return find


# --- secrets: every pattern starts with a literal ----------------------------------------------

_ANTHROPIC = _text_finder(rb"sk-ant-[A-Za-z0-9_\-]{20,}", _mixed)
_OPENAI = _text_finder(rb"sk-(?!ant-)[A-Za-z0-9_\-]{20,}", _mixed)
_AWS = _text_finder(rb"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}")
_GITHUB = _text_finder(rb"g(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})")
_GOOGLE = _text_finder(rb"AIza[0-9A-Za-z_\-]{35}")
_JWT = _text_finder(rb"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", bounded=False)
# A private key block up to its END line, or to the end of the text when it was cut short. The END
# line is found with a second literal-led search: a lazy ``[\s\S]*?`` costs a step per byte of key.
_PEM_BEGIN = re.compile(rb"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(rb"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")


def _find_pem(text: bytes, shape: bytes) -> Iterator[Span]:
    pos = 0
    while (m := _PEM_BEGIN.search(text, pos)) is not None:
        end_line = _PEM_END.search(text, m.end())
        pos = end_line.end() if end_line is not None else len(text)
        yield m.start(), pos


# --- e-mail: anchored on the '@', local part found backwards --------------------------------------

_AT_DOMAIN = re.compile(rb"@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![A-Za-z0-9\-])")
_LOCAL = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&*+/=?^_`{|}~-"
          + bytes(range(128, 256)))  # internationalised local parts (RFC 6531); up to 64 of them
_LOCAL_LEAD_JUNK = b".`{|}"


def _find_email(text: bytes, shape: bytes) -> Iterator[Span]:
    for m in _AT_DOMAIN.finditer(text):
        at = m.start()
        # the local part: up to 64 bytes of _LOCAL before the '@' (strips in C, not a loop per byte)
        window = max(0, at - 64)
        before = text[window:at].rstrip(_LOCAL)
        local = text[window + len(before):at].lstrip(_LOCAL_LEAD_JUNK)
        start = at - len(local)
        if local:
            yield start, m.end()


# --- numbers, searched in the shape (digits are all '0') ------------------------------------------

_CARD_RE = re.compile(rb"0000(?:[ \-]?0){9,15}")
# issuer prefix -> allowed lengths (Visa, Mastercard, Amex, Diners, JCB, Discover/UnionPay/Maestro)
_BRANDS = ((re.compile(rb"4"), (13, 16, 19)), (re.compile(rb"5[1-5]|2[2-7]"), (16,)), (re.compile(rb"3[47]"), (15,)),
           (re.compile(rb"3[0689]"), (14, 15, 16, 17, 18, 19)), (re.compile(rb"35"), (16, 17, 18, 19)),
           (re.compile(rb"6|50|5[6-8]"), (12, 13, 14, 15, 16, 17, 18, 19)))
_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 3), (4, 4, 5), (4, 4, 4, 1)})


# every two-digit prefix -> the card lengths its issuers allow (from _BRANDS: one dict look-up per candidate)
_BRAND_LENGTHS = {f"{i:02d}".encode(): frozenset(n for p, lengths in _BRANDS if p.match(f"{i:02d}".encode()) for n in lengths)
                  for i in range(100)}
# Luhn: the digits in odd places from the right count as they are, the others doubled (less 9 past 9)
_LUHN_DOUBLE = bytes(range(256)).translate(bytes(((c - 48) * 2 - 9 * (c >= 53)) if 48 <= c <= 57 else 0 for c in range(256)))


def luhn_valid(digits: bytes) -> bool:
    """The Luhn checksum of a string of ASCII digits is valid."""
    plain = digits[-1::-2]
    return (sum(plain) - 48 * len(plain) + sum(digits[-2::-2].translate(_LUHN_DOUBLE))) % 10 == 0


def _find_card(text: bytes, shape: bytes) -> Iterator[Span]:
    for m in _CARD_RE.finditer(shape):
        start, end = m.span()
        if not _bounded(shape, start, end):
            continue
        token = text[start:end]
        groups = token.replace(b"-", b" ").split(b" ")
        if len(groups) > 1 and (b" " in token and b"-" in token or tuple(map(len, groups)) not in _GROUPINGS):
            continue
        digits = b"".join(groups)
        if len(digits) in _BRAND_LENGTHS[digits[:2]] and luhn_valid(digits):
            yield start, end


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_IBAN_LENGTHS = {k.encode(): v for k, v in IBAN_LENGTHS.items()}
_IBAN_DIGITS = {c: str(c - 55) for c in range(65, 91)}  # A=10 ... Z=35
_IBAN_RE = re.compile(rb"AA00(?: ?[A0]){11,30}")


def iban_valid(compact: bytes | str) -> bool:
    """``compact`` (no spaces, upper case) has its country's length and a mod-97 remainder of 1."""
    if isinstance(compact, str):
        compact = compact.encode()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    return int((compact[4:] + compact[:4]).decode().translate(_IBAN_DIGITS)) % 97 == 1


def _find_iban(text: bytes, shape: bytes) -> Iterator[Span]:
    for m in _IBAN_RE.finditer(shape):
        start = m.start()
        if start and shape[start - 1] in _WORD:
            continue
        want = _IBAN_LENGTHS.get(text[start:start + 2])
        if want is None:
            continue
        # exactly `want` IBAN characters: the greedy match may run on into a following word. The
        # end is the least `want + spaces before it`, found by counting spaces (C) a few times over.
        limit, end = m.end(), start + want
        while end <= limit and (spaces := text.count(b" ", start, end)) != end - start - want:
            end = start + want + spaces
        if end > limit or (end < len(shape) and shape[end] in _WORD):
            continue
        if iban_valid(text[start:end].replace(b" ", b"")):
            yield start, end


_IPV4_RE = re.compile(rb"00{0,2}\.00{0,2}\.00{0,2}\.00{0,2}")


def _find_ipv4(text: bytes, shape: bytes) -> Iterator[Span]:
    for m in _IPV4_RE.finditer(shape):
        start, end = m.span()
        if start and (shape[start - 1] in _WORD or shape[start - 1] == 46):
            continue
        if end < len(shape) and (shape[end] in _WORD or (shape[end] == 46 and shape[end + 1:end + 2] == b"0")):
            continue
        parts = text[start:end].split(b".")
        if all(int(p) <= 255 and (p == b"0" or not p.startswith(b"0")) for p in parts):
            yield start, end


# Two colons close together are the cheap way into an IPv6 address; the token is then grown both
# ways over hex digits, colons and dots and checked with ipaddress.
_IPV6_SEED = re.compile(rb":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = b"0123456789abcdefABCDEF:."


def _find_ipv6(text: bytes, shape: bytes) -> Iterator[Span]:
    pos = 0
    for m in _IPV6_SEED.finditer(text):
        if m.start() < pos:
            continue
        start, end = m.start(), m.end()
        # grown with bytes.rstrip/lstrip (C) over a window rather than a Python loop per byte; a
        # window of nothing but address characters is grown on by the loop
        head = text[max(0, start - 64):start]
        start -= len(head) - len(head.rstrip(_IPV6_CHARS))
        if start and head and not head.rstrip(_IPV6_CHARS):
            while start > 0 and text[start - 1] in _IPV6_CHARS:
                start -= 1
        tail = text[end:end + 64]
        end += len(tail) - len(tail.lstrip(_IPV6_CHARS))
        if end < len(text) and tail and not tail.lstrip(_IPV6_CHARS):
            while end < len(text) and text[end] in _IPV6_CHARS:
                end += 1
        pos = end
        token = text[start:end].rstrip(b".")
        if token.endswith(b":") and not token.endswith(b"::"):
            token = token[:-1]
        end = start + len(token)
        if (start and shape[start - 1] in b"0Aa_") or (end < len(shape) and shape[end] in b"0Aa_"):
            continue
        groups = [g for g in token.replace(b"::", b":").split(b":") if g]
        if len(groups) < 2 or b"0" not in shape[start:end]:
            continue
        if ipv6_valid(token):
            yield start, end


def ipv6_valid(token: bytes) -> bool:
    """``token`` (hex digits, colons and dots only) is an IPv6 address, as :mod:`ipaddress` reads it.

    The common forms (eight groups, or fewer around one ``::``) are checked here; only a token with an
    embedded IPv4 part (a dot) goes to :class:`ipaddress.IPv6Address`, which costs several µs.
    """
    if b"." in token:
        try:
            ipaddress.IPv6Address(token.decode())
        except ValueError:
            return False
        return True
    halves = token.split(b"::")
    if len(halves) == 1:
        groups = token.split(b":")
        if len(groups) != 8:
            return False
    elif len(halves) == 2:
        head, tail = halves
        groups = (head.split(b":") if head else []) + (tail.split(b":") if tail else [])
        if len(groups) > 7:
            return False
    else:
        return False
    for g in groups:
        if not 1 <= len(g) <= 4:
            return False
    return True


_PHONE_RE = re.compile(rb"0[0 ().\-/]{5,22}0")
CLUSTER = re.compile(rb"0[0 ().\-/]{5,}0")
"""In the shape: holds every match of the card, IPv4 and phone regexes (each is 7 bytes or more of these
characters, from a digit to a digit)."""
_DATE_LIKE = re.compile(rb"0000[-/.]00?[-/.]00?|00?[-/.]00?[-/.]00(?:00)?")
_DIGITS = re.compile(rb"0+")


def _find_phone(text: bytes, shape: bytes) -> Iterator[Span]:
    size = len(shape)
    for m in _PHONE_RE.finditer(shape):
        start, end = m.span()
        # the cheapest rejections first: most candidates are bare digit runs, dates or versions
        after = shape[end] if end < size else 0
        if after in _WORD or (after in _PHONE_AFTER and shape[end + 1:end + 2] == b"0"):
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
        yield start, end


_PHONE_BEFORE = frozenset(_WORD | set(b"+./"))
_PHONE_AFTER = frozenset(b".-/")


DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "<PRIVATE_KEY>", True, _find_pem, "-----", 0, ("-----BEGIN",), "-----BEGIN"),
    # marks of the prefixes: eyJ -> yA, sk-ant- -> k--, sk- -> k-, ghp_ and github_pat_ -> gh_
    Detector("jwt", "<JWT>", True, _JWT, "yA", 0, ("eyJ",), "eyJ"),
    Detector("anthropic_key", "<ANTHROPIC_KEY>", True, _ANTHROPIC, "k--", 1, ("sk-ant-",), "sk-"),
    Detector("openai_key", "<OPENAI_KEY>", True, _OPENAI, "k-", 1, ("sk-",), "sk-"),
    Detector("aws_access_key", "<AWS_ACCESS_KEY>", True, _AWS, "AAAA", anchor="A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)"),
    Detector("github_token", "<GITHUB_TOKEN>", True, _GITHUB, "gh_", anchor="gh[pousr]_|github_pat_"),
    Detector("google_api_key", "<GOOGLE_API_KEY>", True, _GOOGLE, "Az", 0, ("AIza",), "AIza"),
    Detector("email", "<EMAIL>", False, _find_email, "@", anchor="@"),
    # in the marks (spaces and lower-case letters left out) a card is 0000(-?0){9,15}, an IBAN AA00[A0]{11,30}
    Detector("credit_card", "<CREDIT_CARD>", False, _find_card, "0000", 13, anchor="[0-9]",
             marks_re=re.compile("0000(?:-?0){9}"), cluster=True),
    Detector("iban", "<IBAN>", False, _find_iban, "AA00", 2, anchor="[A-Z][A-Z][0-9]", marks_re=re.compile("AA00[A0]{11}")),
    Detector("ipv4", "<IPV4>", False, _find_ipv4, "0.0", 4, anchor="[0-9]", cluster=True),
    # the seed ':' + up to 4 hex digits + ':' leaves ':' [0A]{0,4} ':' in the marks (a-f are not kept)
    Detector("ipv6", "<IPV6>", False, _find_ipv6, ":", 1, anchor=":", marks_re=re.compile(":[0A]{0,4}:")),
    Detector("phone", "<PHONE>", False, _find_phone, "00", 7, anchor="[0-9]", cluster=True),
)
"""Every detector, in priority order (an earlier one wins overlapping text)."""

MARKS_MAX = 1024
"""Longest text (bytes) whose marks are computed; longer texts run every finder whose triggers occur."""

DETECTOR_NAMES = tuple(d.name for d in DETECTORS)
SECRET_DETECTORS = tuple(d.name for d in DETECTORS if d.secret)


class Scanner:
    """Finds and replaces the entities of a fixed set of detectors (built once, then only called).

    Args:
        names: detector names to run, in any order (priority stays that of :data:`DETECTORS`).
    """

    __slots__ = ("_detectors", "_plan", "min_length", "gate")

    def __init__(self, names: tuple[str, ...] | frozenset[str]) -> None:
        wanted = set(names)
        unknown = wanted - set(DETECTOR_NAMES)
        if unknown:
            raise ValueError(f"unknown detectors: {', '.join(sorted(unknown))}")
        self._detectors = tuple(d for d in DETECTORS if d.name in wanted)
        self._plan = tuple((d, d.mark, d.min_digits, d.triggers, d.find, d.secret, d.marks_re, d.cluster)
                           for d in self._detectors)
        self.min_length = 6 if any(not d.secret for d in self._detectors) else 20
        """Shorter texts cannot hold an entity of these detectors and are not scanned."""
        anchors = sorted({d.anchor for d in self._detectors})
        self.gate = re.compile("|".join(anchors) if anchors else "(?!)")
        """Finds nothing in a ``str`` that holds no entity (a cheap pre-check for many short values)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._detectors)

    def find(self, data: bytes, text: str | None = None) -> list[tuple[int, int, Detector]]:
        """Non-overlapping entities in UTF-8 ``data`` as byte offsets, sorted by position.

        ``text`` is ``data`` decoded, when the caller has it (only its ASCII substrings are looked at).
        """
        if len(data) < self.min_length:
            return []
        # Marks pay off on short texts; on long ones a finder's own literal-led search is as cheap.
        if len(data) <= MARKS_MAX:
            marks = data.translate(MARKS, MARKS_DELETE).decode("ascii")
            digits = marks.count("0")
        else:
            marks, digits = None, len(data)
        found: list[tuple[int, int, Detector]] = []  # sorted by start, non-overlapping
        starts: list[int] = []
        shape = b""
        blanked = False
        clustered = None  # whether the shape has a CLUSTER: looked up once, by the first finder that needs it
        for det, mark, min_digits, triggers, finder, secret, marks_re, cluster in self._plan:
            if min_digits > digits or (marks is not None and (
                    mark not in marks or (marks_re is not None and marks_re.search(marks) is None))):
                continue
            if triggers:
                if text is None:
                    text = data.decode("latin-1")  # same ASCII substrings, whatever the encoding
                for trigger in triggers:
                    if trigger in text:
                        break
                else:
                    continue
            if not shape:
                shape = data.translate(SHAPE)
            if found:
                if not blanked and not secret:
                    # numbers inside a key or token already found are not looked at again
                    hidden = bytearray(shape)
                    for s, e, _ in found:
                        hidden[s:e] = bytes(e - s)
                    shape, blanked = bytes(hidden), True
            if cluster:
                if clustered is None:
                    # blanking the shape later only removes clusters, so a False stays right
                    clustered = CLUSTER.search(shape) is not None
                if not clustered:
                    continue
            for start, end in finder(data, shape):
                i = bisect_right(starts, start)
                if (i and found[i - 1][1] > start) or (i < len(starts) and starts[i] < end):
                    continue  # overlaps an entity of a detector that comes first
                starts.insert(i, start)
                found.insert(i, (start, end, det))
        return found

    def mask(self, text: str, counts: dict[str, int] | None = None) -> str:
        """``text`` with each entity replaced by its placeholder; adds per-detector counts to ``counts``."""
        if len(text) < self.min_length:
            return text
        data = text.encode("utf-8", "surrogatepass")
        found = self.find(data, text)
        if not found:
            return text
        out: list[bytes] = []
        pos = 0
        for start, end, det in found:
            out.append(data[pos:start])
            out.append(det.placeholder.encode())
            pos = end
            if counts is not None:
                counts[det.name] = counts.get(det.name, 0) + 1
        out.append(data[pos:])
        return b"".join(out).decode("utf-8", "surrogatepass")
