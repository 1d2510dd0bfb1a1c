"""Rebuild ``locale/llm_cost_tracker.pot`` from the sources and the alert rules, and merge it into every ``.po``.

Messages come from modules that import ``llm_cost_tracker.i18n`` (keywords ``_``, ``ngettext``,
``pgettext``, ``N_``, ``NP_``) and from the alert annotations (:mod:`llm_cost_tracker.i18n.alerts`).
New messages arrive untranslated, removed ones are dropped; ``tests/i18n`` fails until every catalog
translates every message. Run ``python -m llm_cost_tracker.i18n.extract`` (``--check``: exit 1 if the
template is not current).
"""

from __future__ import annotations

import io
import sys

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.pofile import read_po, write_po

from llm_cost_tracker.i18n import alerts
from llm_cost_tracker.i18n._catalog import DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE, po_path

PACKAGE = LOCALE_DIR.parent
POT = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {**DEFAULT_KEYWORDS, "NP_": ((1, "c"), 2)}
ALERT_COMMENT = ("Prometheus alert {alert}, {key}. Keep every {{placeholder}}: each stands for a template "
                 "expression (a label, the alert's value or a query result).")


def _file_only(path: str) -> tuple[str, int]:
    """A location without a line number (``#: path``), so an edit elsewhere in a file leaves the .pot alone.

    Babel writes a None line number as the bare path but annotates the line number as ``int``.
    """
    return (path, None)  # type: ignore[return-value]


def template() -> Catalog:
    """The catalog of every message in the sources and the alert rules, without translations."""
    catalog = Catalog(domain=DOMAIN, project="llm-cost-tracker", charset="utf-8")
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if "llm_cost_tracker.i18n" not in text and path.parent.name != "i18n":
            continue
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for _lineno, message, comments, context in extract_from_file("python", str(path), keywords=KEYWORDS):
            catalog.add(message, locations=[_file_only(relative)], auto_comments=comments, context=context)
    for alert, key, msgid in alerts.messages():
        catalog.add(msgid, locations=[_file_only("deploy/prometheus/alerts.yaml")],
                    auto_comments=[ALERT_COMMENT.format(alert=alert, key=key)])
    return catalog


def _po_text(catalog: Catalog) -> str:
    catalog.fuzzy = False
    catalog.version = "0.1.0"
    catalog.copyright_holder = "the llm-cost-tracker authors"
    catalog.msgid_bugs_address = "https://github.com/llm-cost-tracker/llm-cost-tracker/issues"
    out = io.BytesIO()
    write_po(out, catalog, width=0, omit_header=False, include_previous=False, sort_output=False,
             no_location=False)
    lines = out.getvalue().decode().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(('"POT-Creation-Date', '"PO-Revision-Date')))


def main(argv: list[str] | None = None) -> int:
    """Write the template and merge it into the catalogs (``--check``: only compare the template)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    pot = template()
    text = _po_text(pot)
    if check:
        if not POT.is_file() or POT.read_text() != text:
            print(f"{POT.name} is not current: run python -m llm_cost_tracker.i18n.extract", file=sys.stderr)
            return 1
        return 0
    POT.parent.mkdir(parents=True, exist_ok=True)
    POT.write_text(text)
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        path = po_path(lang)
        if path.is_file():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=lang, domain=DOMAIN)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang, domain=DOMAIN, project="llm-cost-tracker", charset="utf-8")
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.write_text(_po_text(catalog))
        print(f"updated {path.relative_to(PACKAGE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
