"""Locale choice (--lang > LCT_LANG > LC_ALL > LC_MESSAGES > LANG) and number/currency formats per locale."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llm_cost_tracker.i18n import ENGLISH, Translator, negotiate, render_table, translator


def test_flag_beats_lct_lang_beats_environment() -> None:
    """An explicit language wins over LCT_LANG, which wins over LC_ALL/LC_MESSAGES/LANG."""
    env = {"LCT_LANG": "fr", "LC_ALL": "ja_JP.UTF-8", "LANG": "es_ES.UTF-8"}
    assert translator("de", env).lang == "de"
    assert translator(None, env).lang == "fr"
    assert translator(None, {"LC_ALL": "ja_JP.UTF-8", "LC_MESSAGES": "de_DE", "LANG": "es_ES.UTF-8"}).lang == "ja"
    assert translator(None, {"LC_MESSAGES": "de_DE", "LANG": "es_ES.UTF-8"}).lang == "de"
    assert translator(None, {"LANG": "zh_CN.UTF-8"}).lang == "zh"
    assert translator(None, {}).lang == "en"


def test_environment_c_locale_and_unsupported_locale_give_english_silently() -> None:
    """LANG=C or an environment locale without a catalog gives English without a note."""
    assert translator(None, {"LANG": "C.UTF-8"}) == ENGLISH
    assert translator(None, {"LANG": "pt_BR.UTF-8"}) == ENGLISH


@pytest.mark.parametrize("requested", ["pt", "xx-YY", "not a language!"])
def test_unknown_explicit_language_falls_back_to_english_with_note(requested: str) -> None:
    """An explicitly requested language without a catalog gives English and a note naming what exists."""
    t = translator(requested, {})
    assert t.lang == "en" and t.note is not None
    assert repr(requested) in t.note and "es, fr, de, ja, zh" in t.note and "English" in t.note
    assert translator(None, {"LCT_LANG": requested}).note == t.note


def test_region_picks_number_format_not_catalog() -> None:
    """de_CH uses the German catalog with Swiss number formats; tags may use - or _ and an encoding."""
    t = translator("de-CH", {})
    assert (t.lang, t.locale) == ("de", "de_CH")
    assert translator(None, {"LANG": "de_DE.UTF-8@euro"}).locale == "de_DE"
    assert t.number(Decimal("1234567.5")) != translator("de", {}).number(Decimal("1234567.5"))


@pytest.mark.parametrize(("lang", "money", "number"), [
    ("de", "1.234,56\xa0$", "1.234.567"),
    ("fr", "1\u202f234,56\xa0$US", "1\u202f234\u202f567"),
    ("es", "1.234,56\xa0US$", "1.234.567"),
    ("ja", "$1,234.56", "1,234,567"),
    ("zh", "US$1,234.56", "1,234,567"),
])
def test_money_and_numbers_per_locale(lang: str, money: str, number: str) -> None:
    """USD amounts and integers follow each locale's CLDR format (de: 1.234,56 $)."""
    t = translator(lang, {})
    assert t.money(Decimal("1234.56")) == money
    assert t.number(1234567) == number


def test_money_keeps_small_amounts_and_rounds_to_micro_dollars() -> None:
    """Sub-cent costs keep their digits (up to 6 decimals); whole amounts show 2 decimals."""
    t = translator("de", {})
    assert t.money(Decimal("0.000123")) == "0,000123\xa0$"
    assert t.money(Decimal("0.0000001234")) == "0,00\xa0$"
    assert t.money(Decimal("12")) == "12,00\xa0$"


def test_english_output_is_unchanged() -> None:
    """English prints numbers as before localization: plain decimals, no grouping, no currency sign."""
    assert ENGLISH.money(Decimal("1234.5600")) == "1234.56"
    assert ENGLISH.number(1234567) == "1234567"
    assert ENGLISH.percent(0.8534) == "85.3%"


def test_accept_language_negotiation() -> None:
    """The highest-q supported language of Accept-Language wins; none supported keeps the default."""
    default = Translator("fr", "fr")
    assert negotiate("pt-BR, de;q=0.8, ja;q=0.9", default).lang == "ja"
    assert negotiate("de-AT", default).locale == "de_AT"
    assert negotiate("pt, *;q=0.1", default) is default
    assert negotiate("", default) is default
    assert negotiate("es;q=0, en;q=0.5", default).lang == "en"


def test_localized_table_aligns_wide_characters_and_translates() -> None:
    """Japanese headers (two cells per character) align with the values; the footer is translated."""
    t = translator("ja", {})
    out = render_table(["model", "requests", "cost_usd"], [["gpt-4o", 1234, Decimal("1.5")], ["o3", 5, None]], t)
    lines = out.splitlines()
    assert lines[0].split() == ["モデル", "リクエスト数", "コスト"]
    assert lines[2].split() == ["gpt-4o", "1,234", "$1.50"]
    assert lines[-1] == "(2 行)"
    from llm_cost_tracker.i18n._table import width

    assert width(lines[0]) == width(lines[2].rstrip()) or width(lines[0]) <= width(lines[1])


def test_plural_forms() -> None:
    """Row counts use each language's plural rules."""
    assert render_table(["model"], [["a"]], translator("de", {})).splitlines()[-1] == "(1 Zeile)"
    assert render_table(["model"], [["a"], ["b"]], translator("es", {})).splitlines()[-1] == "(2 filas)"
    assert render_table(["model"], [], translator("fr", {})).splitlines()[-1] == "(0 ligne)"
