"""Loading the gettext catalogs: compiled ``.mo`` files, or the ``.po`` compiled in memory with Babel.

The build compiles ``locale/<lang>/LC_MESSAGES/llm_cost_tracker.po`` to ``.mo`` next to it. A source
checkout or an editable install may have no ``.mo`` (or one older than its ``.po``): then the ``.po``
is compiled in memory at first use, so a translation edited in place shows up without a build.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

DOMAIN = "llm_cost_tracker"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "es", "fr", "de", "ja", "zh")
"""Languages with messages: English (the source, no catalog) and one catalog each for the others."""


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of ``po`` (fuzzy and untranslated entries are left out, as msgfmt does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The messages of ``lang`` (one of :data:`LANGUAGES`); English and unknown languages get the msgids."""
    if lang == SOURCE_LANGUAGE or lang not in LANGUAGES:
        return gettext.NullTranslations()
    po = po_path(lang)
    mo = po.with_suffix(".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    if not po.is_file():  # a broken install: say it in English rather than fail
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(compile_po(po)))
