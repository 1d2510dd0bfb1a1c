"""Localization: gettext catalogs for es, fr, de, ja and zh, and number and currency formats with Babel.

Localized: the table output of ``report`` and ``pricing show``, the budget API's messages and advice
reasons, and the alert annotations (``deploy/prometheus/alerts.<lang>.yaml``). JSON output, metric
names, log lines and configuration errors stay English. See docs/localization.md.
"""

from __future__ import annotations

import sys

from llm_cost_tracker.i18n._catalog import DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE
from llm_cost_tracker.i18n._table import N_, NP_, render_table, report_renderer
from llm_cost_tracker.i18n._translator import ENGLISH, Translator, negotiate, translator

__all__ = [
    "DOMAIN", "ENGLISH", "LANGUAGES", "LOCALE_DIR", "N_", "NP_", "SOURCE_LANGUAGE", "Translator", "cli_translator",
    "negotiate", "render_table", "report_renderer", "translator",
]


def cli_translator(lang: str | None = None) -> Translator:
    """:func:`translator` for a command: prints its fallback note, if any, once on stderr."""
    t = translator(lang)
    if t.note:
        print(f"llm-cost-tracker: {t.note}", file=sys.stderr)
    return t
