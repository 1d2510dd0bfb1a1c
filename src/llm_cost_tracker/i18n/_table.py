"""Localized report tables: translated column headers, numbers and USD amounts the locale's way.

Only ``--format table`` is localized; JSON and CSV keep the machine column names and exact decimals.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from llm_cost_tracker.i18n._translator import Translator

Renderer = Callable[[Sequence[str], Sequence[Sequence[Any]], str], str]


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def NP_(context: str, message: str) -> str:
    """Mark ``message`` for extraction with a context (``msgctxt``); shown with ``pgettext(context, ...)``."""
    return message


COLUMN_CONTEXT = "report column"
# Column headers of `llm-cost-tracker report`; the msgid is the JSON key, so English tables are unchanged.
REPORT_COLUMNS = (
    NP_("report column", "model"), NP_("report column", "service"), NP_("report column", "provider"),
    NP_("report column", "tenant"), NP_("report column", "day"), NP_("report column", "requests"),
    NP_("report column", "cost_usd"), NP_("report column", "cache_savings_usd"),
    NP_("report column", "unpriced_requests"), NP_("report column", "input_tokens"),
    NP_("report column", "output_tokens"), NP_("report column", "cache_read_tokens"),
    NP_("report column", "cache_write_tokens"), NP_("report column", "reasoning_tokens"),
)


def width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 0 if unicodedata.combining(c) else 1
               for c in text)


def _pad(text: str, cells: int, right: bool) -> str:
    fill = " " * max(0, cells - width(text))
    return fill + text if right else text + fill


def _cell(column: str, value: Any, t: Translator) -> tuple[str, bool]:
    """The text of one value and whether it is a number (right-aligned)."""
    if value is None:
        return "NULL", False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int | float | Decimal):
        return (t.money(value) if column.endswith("_usd") else t.number(value)), True
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat(), False
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace"), False
    return str(value), False


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], t: Translator) -> str:
    """``rows`` as an aligned table with translated headers and locale-formatted numbers."""
    headers = [t.pgettext(COLUMN_CONTEXT, c) for c in columns]
    cells = [[_cell(c, v, t) for c, v in zip(columns, row, strict=True)] for row in rows]
    widths = [max([width(h)] + [width(r[i][0]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(r[i][1] or r[i][0] == "NULL" for r in cells) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(_pad(v, w, num) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    parts = [line(headers), line(["-" * w for w in widths])] + [line([c[0] for c in r]) for r in cells]
    parts.append(t.ngettext("({n} row)", "({n} rows)", len(cells)).format(n=t.number(len(cells))))
    return "\n".join(parts)


def report_renderer(t: Translator, fallback: Renderer) -> Renderer:
    """A renderer for ``report``: ``fallback`` for JSON, CSV and English; localized tables otherwise."""

    def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
        if fmt != "table" or not t.localized:
            return fallback(columns, rows, fmt)
        return render_table(columns, rows, t)

    return render
