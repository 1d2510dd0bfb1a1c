"""Entity detectors of the redaction stage: compiled once at import, run by :class:`Scanner`.

Each detector finds candidate spans with a regex whose search is cheap (a literal first character,
or a first-character class the regex engine skips over in C) and is only run when a cheap
substring pre-check passes (no ``@``: no e-mail search). Candidates are then validated in Python
(Luhn for cards, mod-97 and country length for IBANs, octet ranges for IPv4, :mod:`ipaddress` for
IPv6, digit counts for phones), so a Luhn-invalid card number or a non-IBAN is left as it is.

Where two detectors claim overlapping text, the one earlier in :data:`DETECTORS` wins (secrets
first, phone numbers last).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of entity.

    Args:
        name: metric label and config name (``email``).
        placeholder: what mask mode writes instead of the entity (``<EMAIL>``).
        secret: True for credentials (scanned in every string attribute by default).
        triggers: substrings one of which must occur for the finder to run (empty: always run).
        find: yields the (start, end) of each validated entity.
    """

    name: str
    placeholder: str
    secret: bool
    triggers: tuple[str, ...]
    find: Finder


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_-"


def _bounded(text: str, start: int, end: int) -> bool:
    """No token character right before ``start`` or right after ``end``."""
    return (start == 0 or not _word_char(text[start - 1])) and (end >= len(text) or not _word_char(text[end]))


def _regex_finder(pattern: str, check: Callable[[str], bool] | None = None, bounded: bool = True,
                  flags: int = 0) -> Finder:
    regex = re.compile(pattern, flags)

    def find(text: str) -> Iterator[Span]:
        for m in regex.finditer(text):
            start, end = m.span()
            if bounded and not _bounded(text, start, end):
                continue
            if check is not None and not check(m.group()):
                continue
            yield start, end

    return find


def _mixed(token: str) -> bool:
    """Random-looking: has both a digit and a letter (rules out words joined by dashes)."""
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


# --- secrets -------------------------------------------------------------------------------------

_ANTHROPIC = _regex_finder(r"sk-ant-[A-Za-z0-9_\-]{20,}", _mixed)
_OPENAI = _regex_finder(r"sk-(?!ant-)[A-Za-z0-9_\-]{20,}", _mixed)
_AWS = _regex_finder(r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}")
_GITHUB = _regex_finder(r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")
_GOOGLE = _regex_finder(r"AIza[0-9A-Za-z_\-]{35}")
_JWT = _regex_finder(r"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*", bounded=False)
# A private key block up to its END line, or to the end of the text when it was cut short.
_PEM = _regex_finder(r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
                     r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|[\s\S]*\Z)", bounded=False)

# --- e-mail: anchored on the '@' (a literal the engine finds fast), local part found backwards ----

_AT_DOMAIN = re.compile(r"@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})(?![A-Za-z0-9\-])")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")


def _find_email(text: str) -> Iterator[Span]:
    for m in _AT_DOMAIN.finditer(text):
        at = m.start()
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        while start < at and text[start] in ".'`{|}":  # quote or dot punctuation before the address
            start += 1
        if start < at:
            yield start, m.end()


# --- numbers -------------------------------------------------------------------------------------

_CARD_RE = re.compile(r"\d(?:[ \-]?\d){12,18}")
_IIN = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|35|6[0-9]|50|5[6-8]")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits is valid."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _find_card(text: str) -> Iterator[Span]:
    for m in _CARD_RE.finditer(text):
        start, end = m.span()
        if not _bounded(text, start, end):
            continue
        token = m.group()
        digits = token.replace(" ", "").replace("-", "")
        seps = {c for c in token if not c.isdigit()}
        if len(seps) > 1 or not 13 <= len(digits) <= 19:
            continue
        if _IIN.match(digits) and luhn_valid(digits):
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
_IBAN_RE = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    """``compact`` (no spaces, upper case) has its country's length and a mod-97 remainder of 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _find_iban(text: str) -> Iterator[Span]:
    for m in _IBAN_RE.finditer(text):
        start = m.start()
        if start and _word_char(text[start - 1]):
            continue
        want = IBAN_LENGTHS.get(m.group()[:2])
        if want is None:
            continue
        # take exactly `want` IBAN characters (the greedy match may run into a following word)
        n, end = 0, start
        token = m.group()
        for i, c in enumerate(token):
            if c != " ":
                n += 1
                if n == want:
                    end = start + i + 1
                    break
        if n != want or (end < len(text) and text[end].isalnum() and token[end - start:end - start + 1] != " "):
            continue
        if iban_valid(text[start:end].replace(" ", "")):
            yield start, end


_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def _find_ipv4(text: str) -> Iterator[Span]:
    for m in _IPV4_RE.finditer(text):
        start, end = m.span()
        if start and (text[start - 1].isalnum() or text[start - 1] == "."):
            continue
        if end < len(text) and (text[end].isalnum() or (text[end] == "." and text[end + 1:end + 2].isdigit())):
            continue
        parts = m.group().split(".")
        if all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts):
            yield start, end


# Two colons close together: the only cheap way into an IPv6 address; the token is then grown both
# ways over hex digits, colons and dots and checked with ipaddress.
_IPV6_SEED = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")


def _find_ipv6(text: str) -> Iterator[Span]:
    pos = 0
    for m in _IPV6_SEED.finditer(text):
        if m.start() < pos:
            continue
        start, end = m.start(), m.end()
        while start > 0 and text[start - 1] in _IPV6_CHARS:
            start -= 1
        while end < len(text) and text[end] in _IPV6_CHARS:
            end += 1
        pos = end
        token = text[start:end].rstrip(".")
        if token.endswith(":") and not token.endswith("::"):
            token = token[:-1]
        end = start + len(token)
        if (start and (text[start - 1].isalnum() or text[start - 1] == "_")) or \
                (end < len(text) and (text[end].isalnum() or text[end] in "_")):
            continue
        groups = [g for g in token.replace("::", ":").split(":") if g]
        if len(groups) < 2 or not any(c.isdigit() for c in token):
            continue
        try:
            ipaddress.IPv6Address(token)
        except ValueError:
            continue
        yield start, end


_PHONE_RE = re.compile(r"(?:\+|\(\+?)?\d[\d ().\-/]{5,22}\d")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_GROUPS = re.compile(r"\d+")


def _find_phone(text: str) -> Iterator[Span]:
    for m in _PHONE_RE.finditer(text):
        start, end = m.span()
        if start and (text[start - 1].isalnum() or text[start - 1] in "+.-_/"):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] in "_" or
                                (text[end] in ".-/" and text[end + 1:end + 2].isdigit())):
            continue
        token = m.group()
        if token.count("(") != token.count(")") or "//" in token or "/" in token:
            continue
        groups = _GROUPS.findall(token)
        digits = sum(len(g) for g in groups)
        international = token.startswith(("+", "(+"))
        if not 7 <= digits <= 15 or (digits >= 13 and not international):
            continue
        if not international and (len(groups) < 2 or _DATE_LIKE.fullmatch(token)):
            continue
        if max(len(g) for g in groups) < 3 or (not international and all(len(g) == 4 for g in groups)):
            continue
        if not international and "." in token and len(groups) != 3:
            continue  # 1.2.3.4.5 version-ish
        yield start, end


DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "<PRIVATE_KEY>", True, ("PRIVATE KEY",), _PEM),
    Detector("jwt", "<JWT>", True, ("eyJ",), _JWT),
    Detector("anthropic_key", "<ANTHROPIC_KEY>", True, ("sk-ant-",), _ANTHROPIC),
    Detector("openai_key", "<OPENAI_KEY>", True, ("sk-",), _OPENAI),
    Detector("aws_access_key", "<AWS_ACCESS_KEY>", True,
             ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"), _AWS),
    Detector("github_token", "<GITHUB_TOKEN>", True, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
             _GITHUB),
    Detector("google_api_key", "<GOOGLE_API_KEY>", True, ("AIza",), _GOOGLE),
    Detector("email", "<EMAIL>", False, ("@",), _find_email),
    Detector("credit_card", "<CREDIT_CARD>", False, (), _find_card),
    Detector("iban", "<IBAN>", False, (), _find_iban),
    Detector("ipv4", "<IPV4>", False, (".",), _find_ipv4),
    Detector("ipv6", "<IPV6>", False, (":",), _find_ipv6),
    Detector("phone", "<PHONE>", False, (), _find_phone),
)
"""Every detector, in priority order (an earlier one wins overlapping text)."""

DETECTOR_NAMES = tuple(d.name for d in DETECTORS)
SECRET_DETECTORS = tuple(d.name for d in DETECTORS if d.secret)
_HAS_DIGIT = re.compile(r"\d")


class Scanner:
    """Finds and replaces the entities of a fixed set of detectors (built once, then only called).

    Args:
        names: detector names to run, in any order (priority stays that of :data:`DETECTORS`).
    """

    __slots__ = ("_detectors", "min_length", "_numeric")

    def __init__(self, names: tuple[str, ...] | frozenset[str]) -> None:
        wanted = set(names)
        unknown = wanted - set(DETECTOR_NAMES)
        if unknown:
            raise ValueError(f"unknown detectors: {', '.join(sorted(unknown))}")
        self._detectors = tuple(d for d in DETECTORS if d.name in wanted)
        self._numeric = frozenset({"credit_card", "iban", "ipv4", "phone"})
        self.min_length = 6 if self._detectors and not all(d.secret for d in self._detectors) else 20
        """Shorter texts cannot hold an entity of these detectors and are not scanned."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._detectors)

    def find(self, text: str) -> list[tuple[int, int, Detector]]:
        """Non-overlapping entities in ``text``, sorted by position."""
        if len(text) < self.min_length:
            return []
        found: list[tuple[int, int, Detector]] = []
        has_digit: bool | None = None
        for det in self._detectors:
            if det.triggers and not any(t in text for t in det.triggers):
                continue
            if det.name in self._numeric:
                if has_digit is None:
                    has_digit = _HAS_DIGIT.search(text) is not None
                if not has_digit:
                    continue
            for start, end in det.find(text):
                if any(start < e and s < end for s, e, _ in found):
                    continue
                found.append((start, end, det))
        found.sort(key=lambda f: f[0])
        return found

    def mask(self, text: str, counts: dict[str, int] | None = None) -> str:
        """``text`` with each entity replaced by its placeholder; adds per-detector counts to ``counts``."""
        found = self.find(text)
        if not found:
            return text
        out: list[str] = []
        pos = 0
        for start, end, det in found:
            out.append(text[pos:start])
            out.append(det.placeholder)
            pos = end
            if counts is not None:
                counts[det.name] = counts.get(det.name, 0) + 1
        out.append(text[pos:])
        return "".join(out)
