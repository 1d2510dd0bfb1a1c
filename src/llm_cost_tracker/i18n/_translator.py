"""A :class:`Translator`: the messages and the number formats of one locale, chosen once per command or request."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from llm_cost_tracker.i18n._catalog import LANGUAGES, SOURCE_LANGUAGE, translations

ENV_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
"""Where the environment names the locale, in POSIX order (the first one set wins)."""
_TAG = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
_MONEY_DECIMALS = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Translator:
    """Messages and number formats of one locale.

    ``lang`` picks the catalog (``de``); ``locale`` the number formats (``de_CH`` groups differently
    from ``de_DE``). English is the source language: its messages are the msgids and its numbers are
    printed as before localization (plain decimals, no grouping), so English output does not change.

    Args:
        lang: a language of :data:`LANGUAGES`.
        locale: a Babel locale identifier for numbers and currency.
        note: why the requested language was not used, when it was not (to print once on stderr).
    """

    lang: str = SOURCE_LANGUAGE
    locale: str = "en"
    note: str | None = None

    @property
    def localized(self) -> bool:
        """False for English: output is exactly what it was before localization."""
        return self.lang != SOURCE_LANGUAGE

    def _(self, message: str) -> str:
        return translations(self.lang).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.lang).ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return translations(self.lang).pgettext(context, message)

    def number(self, value: Any) -> str:
        """``value`` with the locale's grouping and decimal sign, every significant decimal kept."""
        if not self.localized:
            return _plain_number(value)
        from babel.numbers import format_decimal

        return format_decimal(_decimal(value), locale=self.locale, decimal_quantization=False)

    def money(self, value: Any) -> str:
        """An amount in USD the locale's way (de: ``1.234,56 $``), at least 2 and at most 6 decimals.

        English keeps the plain number (the column or the text names the currency).
        """
        if not self.localized:
            return _plain_number(value)
        from babel.numbers import format_currency

        amount = _decimal(value).quantize(_MONEY_DECIMALS, ROUND_HALF_EVEN).normalize()
        return format_currency(amount, "USD", locale=self.locale, decimal_quantization=False)

    def percent(self, ratio: float, decimals: int = 1) -> str:
        """A ratio as a percentage (``0.853`` -> ``85.3%``, fr ``85,3 %``)."""
        if not self.localized:
            return f"{ratio:.{decimals}%}"
        from babel.numbers import format_percent

        return format_percent(ratio, "#,##0" + ("." + "0" * decimals if decimals else "") + "%", locale=self.locale)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _plain_number(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    return str(value)


ENGLISH = Translator()


def _parse(tag: str) -> tuple[str, str] | None:
    """``(language, babel locale)`` of a tag like ``de``, ``de-CH``, ``de_DE.UTF-8@euro``; None if malformed."""
    tag = tag.strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    if tag.upper() in ("C", "POSIX"):
        return SOURCE_LANGUAGE, "en"
    if not _TAG.match(tag):
        return None
    lang = tag.split("_", 1)[0].lower()
    if lang not in LANGUAGES or lang == SOURCE_LANGUAGE:
        return lang, "en"
    try:
        from babel import Locale, UnknownLocaleError

        try:
            return lang, str(Locale.parse(tag))
        except (UnknownLocaleError, ValueError):
            return lang, str(Locale.parse(lang))
    except ImportError:  # no Babel: messages still work, numbers fall back to the language default
        return lang, lang


def translator(lang: str | None = None, environ: Mapping[str, str] | None = None) -> Translator:
    """The translator for an explicit language, else ``LCT_LANG``, else the environment's locale.

    Precedence: ``lang`` (``--lang``, or ``Settings.lang`` which already merges the flag, ``LCT_LANG``
    and the config file) > ``LCT_LANG`` > ``LC_ALL`` > ``LC_MESSAGES`` > ``LANG`` > English. A language
    asked for explicitly (``lang`` or ``LCT_LANG``) that has no catalog gives English with a ``note``;
    an unsupported environment locale gives English silently (it is not a request for this program).
    """
    environ = os.environ if environ is None else environ
    explicit = lang or environ.get("LCT_LANG", "")
    if explicit:
        parsed = _parse(explicit)
        if parsed is not None and parsed[0] in LANGUAGES:
            return Translator(*parsed)
        return Translator(note=f"no translation for language {explicit!r} "
                               f"(available: {', '.join(LANGUAGES)}); using English")
    for name in ENV_VARIABLES:
        value = environ.get(name, "")
        if value:
            parsed = _parse(value)
            return Translator(*parsed) if parsed is not None and parsed[0] in LANGUAGES else ENGLISH
    return ENGLISH


def negotiate(accept_language: str, default: Translator) -> Translator:
    """The translator for an HTTP ``Accept-Language`` header (highest q first), else ``default``."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    for _, _, tag in sorted(ranked):
        parsed = _parse(tag)
        if parsed is not None and parsed[0] in LANGUAGES:
            return Translator(*parsed)
    return default
