"""Catalogs: complete, placeholders intact, current with the sources, compiled at build time and in memory."""

from __future__ import annotations

import gettext
import io
import re
import shutil
import subprocess
from string import Formatter

import pytest
from babel.messages.pofile import read_po

from llm_cost_tracker.i18n import LANGUAGES, SOURCE_LANGUAGE, Translator, _catalog, alerts, extract

CATALOGS = [lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE]
_ALERT_PLACEHOLDER = re.compile(r"\{[a-z][a-z0-9_]*\}")


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in Formatter().parse(text) if name is not None)


def _catalog_of(lang: str):
    with _catalog.po_path(lang).open("rb") as handle:
        return read_po(handle, locale=lang, domain=_catalog.DOMAIN)


def test_template_is_current() -> None:
    """The .pot holds exactly the messages in the sources and alert rules (run i18n.extract after changing them)."""
    assert extract.main(["--check"]) == 0


@pytest.mark.parametrize("lang", CATALOGS)
def test_every_message_is_translated(lang: str) -> None:
    """Every msgid of the template has a non-empty, non-fuzzy translation (every plural form) in the catalog."""
    catalog = _catalog_of(lang)
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}
    missing = []
    for message in extract.template():
        if not message.id:
            continue
        key = (message.context, message.id if isinstance(message.id, str) else message.id[0])
        found = translated.get(key)
        strings = [] if found is None else ([found.string] if isinstance(found.string, str) else list(found.string))
        if found is None or found.fuzzy or not strings or not all(strings):
            missing.append(key)
        elif isinstance(message.id, tuple):
            assert len(strings) == catalog.num_plurals, f"{lang}: {key}: {len(strings)} plural forms"
    assert missing == [], f"{lang}: untranslated {missing}"


@pytest.mark.parametrize("lang", CATALOGS)
def test_placeholders_and_edges_preserved(lang: str) -> None:
    """Each translation uses exactly the msgid's placeholders and keeps its leading/trailing spaces."""
    for message in _catalog_of(lang):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for text in strings:
            assert _fields(text) == _fields(ids[-1]) or _fields(text) == _fields(ids[0]), (lang, message.id, text)
            assert sorted(_ALERT_PLACEHOLDER.findall(text)) == sorted(_ALERT_PLACEHOLDER.findall(ids[0])), (lang, text)
            assert text[:1].isspace() == ids[0][:1].isspace() and text[-1:].isspace() == ids[0][-1:].isspace()
            assert "{{" not in text, f"{lang}: template code in a translation: {text}"


@pytest.mark.parametrize("lang", CATALOGS)
def test_catalog_compiles(lang: str) -> None:
    """Babel compiles every catalog, and GNU msgfmt (when installed) accepts it with --check."""
    translations = gettext.GNUTranslations(io.BytesIO(_catalog.compile_po(_catalog.po_path(lang))))
    assert translations.pgettext("report column", "requests") != "requests"
    if shutil.which("msgfmt"):
        out = subprocess.run(["msgfmt", "--check-format", "--check-domain", "-o", "/dev/null", str(_catalog.po_path(lang))],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


def test_compiled_mo_is_used_and_stale_mo_is_not(tmp_path, monkeypatch) -> None:
    """A .mo newer than its .po is loaded; without one (editable install) the .po is compiled in memory."""
    real = _catalog.po_path("de")
    po = tmp_path / "de" / "LC_MESSAGES" / f"{_catalog.DOMAIN}.po"
    po.parent.mkdir(parents=True)
    po.write_text(real.read_text().replace('msgstr "Anfragen"', 'msgstr "Anfragen (po)"'))
    monkeypatch.setattr(_catalog, "LOCALE_DIR", tmp_path)
    _catalog.translations.cache_clear()
    try:
        assert Translator("de", "de").pgettext("report column", "requests") == "Anfragen (po)"
        mo = po.with_suffix(".mo")
        mo.write_bytes(_catalog.compile_po(real))
        _catalog.translations.cache_clear()
        assert Translator("de", "de").pgettext("report column", "requests") == "Anfragen"
    finally:
        _catalog.translations.cache_clear()


def test_localized_alert_rules_are_current() -> None:
    """deploy/prometheus/alerts.<lang>.yaml match the English rules and the catalogs (run i18n.alerts)."""
    assert alerts.main(["--check"]) == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
@pytest.mark.parametrize("lang", CATALOGS)
def test_localized_alert_rules_are_valid(lang: str) -> None:
    """promtool accepts each localized rule file."""
    out = subprocess.run(["promtool", "check", "rules", str(alerts.target(lang))], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alert_split_round_trips() -> None:
    """Splitting an annotation into a message and placeholders and joining it back gives the original."""
    import yaml

    doc = yaml.safe_load(alerts.SOURCE.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            for key in alerts.ANNOTATIONS:
                text = rule.get("annotations", {}).get(key)
                if text:
                    message, names = alerts.split(text)
                    assert "{{" not in message and alerts.join(message, names) == text
