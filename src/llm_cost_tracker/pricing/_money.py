"""Exact money arithmetic: prices in femto-USD per token, costs in pico-USD.

Every catalog price is a decimal string in USD per million tokens (or USD per request). Internally a
price is an integer number of femto-USD (1e-15 USD) per token, so that prices such as $0.075 per
million tokens (7.5e-8 USD, i.e. 75,000 femto-USD per token) stay exact. A span's cost is summed in
femto-USD and rounded once, half-to-even, to whole pico-USD (``PICO_PER_USD``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

FEMTO_PER_USD = 10**15
FEMTO_PER_PICO = 1000
_PER_MTOK_TO_FEMTO = FEMTO_PER_USD // 10**6  # USD per 1M tokens -> femto-USD per token


class PriceError(ValueError):
    """A price that cannot be represented exactly."""


def parse_decimal(value: object) -> Decimal:
    """A finite, non-negative Decimal from a string or int (floats go through their repr).

    Args:
        value: ``"2.50"``, ``3`` or a float from an importer (converted via ``repr``).
    """
    if isinstance(value, bool):
        raise PriceError(f"not a price: {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        dec = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise PriceError(f"not a decimal number: {value!r}") from exc
    if not dec.is_finite() or dec < 0:
        raise PriceError(f"price must be finite and >= 0: {value!r}")
    return dec


def _exact_int(dec: Decimal, what: str) -> int:
    if dec != dec.to_integral_value():
        raise PriceError(f"{what} is not a whole number of femto-USD: {dec}")
    return int(dec)


def per_mtok_to_femto(value: object) -> int:
    """Femto-USD per token from USD per million tokens; raises if not exact."""
    return _exact_int(parse_decimal(value) * _PER_MTOK_TO_FEMTO, f"{value} USD/1M tokens")


def usd_to_femto(value: object) -> int:
    """Femto-USD from USD (per-request fees); raises if not exact."""
    return _exact_int(parse_decimal(value) * FEMTO_PER_USD, f"{value} USD")


def femto_to_per_mtok(femto: int) -> str:
    """The canonical data-file spelling (USD per million tokens) of a femto-USD-per-token rate."""
    return _plain(Decimal(femto) / _PER_MTOK_TO_FEMTO)


def femto_to_usd_str(femto: int) -> str:
    """The canonical data-file spelling (USD) of a femto-USD amount."""
    return _plain(Decimal(femto) / FEMTO_PER_USD)


def _plain(dec: Decimal) -> str:
    text = format(dec.normalize(), "f")
    return text


def femto_to_pico(femto: int) -> int:
    """Round femto-USD to pico-USD, half to even (the one rounding step of a cost)."""
    quot, rem = divmod(femto, FEMTO_PER_PICO)
    if rem > 500 or (rem == 500 and quot % 2 == 1):
        quot += 1
    return quot


def scale_femto(femto: int, num: int, den: int) -> int:
    """``femto * num / den`` rounded half to even (discounts, GPU-hour token rates)."""
    quot, rem = divmod(femto * num, den)
    if 2 * rem > den or (2 * rem == den and quot % 2 == 1):
        quot += 1
    return quot
