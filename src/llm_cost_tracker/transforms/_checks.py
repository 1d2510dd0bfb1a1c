"""Checksums and formats that decide whether a candidate found by a finder is a real entity.

Each check takes the candidate's bytes and does as much of its work as possible in C (``translate``,
``sum``, ``split``), since it runs once per candidate on the scanner's hot path.
"""

from __future__ import annotations

import ipaddress
import re

# --- cards ------------------------------------------------------------------------------------------

# issuer prefix -> allowed lengths (Visa, Mastercard, Amex, Diners, JCB, Discover/UnionPay/Maestro)
_BRANDS = ((re.compile(rb"4"), (13, 16, 19)), (re.compile(rb"5[1-5]|2[2-7]"), (16,)), (re.compile(rb"3[47]"), (15,)),
           (re.compile(rb"3[0689]"), (14, 15, 16, 17, 18, 19)), (re.compile(rb"35"), (16, 17, 18, 19)),
           (re.compile(rb"6|50|5[6-8]"), (12, 13, 14, 15, 16, 17, 18, 19)))
BRAND_LENGTHS = {f"{i:02d}".encode(): frozenset(n for p, lengths in _BRANDS if p.match(f"{i:02d}".encode())
                                                for n in lengths)
                 for i in range(100)}
"""Every two-digit prefix -> the card lengths its issuers allow (one dict look-up per candidate)."""
CARD_GROUPINGS = frozenset({(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 3), (4, 4, 5),
                            (4, 4, 4, 1)})
"""Group lengths of a card number written with separators."""

# Luhn: the digits in odd places from the right count as they are, the others doubled (less 9 past 9)
_LUHN_DOUBLE = bytes(range(256)).translate(bytes(((c - 48) * 2 - 9 * (c >= 53)) if 48 <= c <= 57 else 0
                                                 for c in range(256)))


def luhn_valid(digits: bytes) -> bool:
    """The Luhn checksum of a string of ASCII digits is valid."""
    plain = digits[-1::-2]
    return (sum(plain) - 48 * len(plain) + sum(digits[-2::-2].translate(_LUHN_DOUBLE))) % 10 == 0


# --- IBANs ------------------------------------------------------------------------------------------

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
IBAN_BYTES_LENGTHS = {k.encode(): v for k, v in IBAN_LENGTHS.items()}
_IBAN_DIGITS = {c: str(c - 55) for c in range(65, 91)}  # A=10 ... Z=35


_COUNTRY_DIGITS = {k: b"%d%d" % (k[0] - 55, k[1] - 55) for k in IBAN_BYTES_LENGTHS}  # b"DE" -> b"1314"


def iban_valid(compact: bytes | str) -> bool:
    """``compact`` (no spaces, upper case) has its country's length and a mod-97 remainder of 1."""
    if isinstance(compact, str):
        compact = compact.encode()
    return IBAN_BYTES_LENGTHS.get(compact[:2]) == len(compact) and compact.isalnum() and iban_mod97(compact)


def iban_mod97(compact: bytes) -> bool:
    """The mod-97 check of an IBAN whose country code, length and characters are known to be right."""
    if compact[2:].isdigit():  # most countries: only the country code needs its letters as numbers
        return int(compact[4:] + _COUNTRY_DIGITS[compact[:2]] + compact[2:4]) % 97 == 1
    return int((compact[4:] + compact[:4]).decode().translate(_IBAN_DIGITS)) % 97 == 1


# --- IPv6 -------------------------------------------------------------------------------------------


_H = rb"[0-9A-Fa-f]{1,4}"
_IPV6_PLAIN = re.compile(rb"|".join(
    [rb"(?:%s:){7}%s" % (_H, _H)]  # eight groups
    # or i groups, '::', and at most 7 - i groups
    + [(rb"(?:%s:){%d}%s" % (_H, i - 1, _H) if i else b"") + b"::"
       + (rb"(?:%s(?::%s){0,%d})?" % (_H, _H, 6 - i) if i < 7 else b"") for i in range(8)]))


def ipv6_valid(token: bytes) -> bool:
    """``token`` (hex digits, colons and dots only) is an IPv6 address, as :mod:`ipaddress` reads it.

    The common forms (eight groups, or fewer around one ``::``) are one regex; only a token with an
    embedded IPv4 part (a dot) goes to :class:`ipaddress.IPv6Address`, which costs several µs.
    """
    if 46 in token:  # '.'
        try:
            ipaddress.IPv6Address(token.decode())
        except ValueError:
            return False
        return True
    return _IPV6_PLAIN.fullmatch(token) is not None
