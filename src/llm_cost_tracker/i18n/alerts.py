"""Localized Prometheus rule files: ``deploy/prometheus/alerts.<lang>.yaml`` from the English source.

Each alert's ``summary`` and ``description`` become one message whose Go template expressions are
replaced by named placeholders (``{budget}``, ``{value}``, ``{q1}``...), so translators see prose and
cannot break a template; adjacent expressions joined only by punctuation share one placeholder.
Everything else in the file (expressions, labels, runbook links) is copied unchanged.

Run ``python -m llm_cost_tracker.i18n.alerts`` after changing ``alerts.yaml`` or a catalog
(``--check`` exits 1 when a generated file is not current).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from llm_cost_tracker.i18n._catalog import LANGUAGES, SOURCE_LANGUAGE
from llm_cost_tracker.i18n._translator import Translator

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ANNOTATIONS = ("summary", "description")
_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.S)
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_OPEN = re.compile(r"^\{\{-? *(range|with|if) ")
_LABEL = re.compile(r"^\{\{ \$labels\.([a-z_]+) \}\}$")
_GLUE = re.compile(r"^[^A-Za-z]*(/s)?[^A-Za-z]*$")
"""Text between two expressions that does not need translating (punctuation, spaces, a ``/s`` unit)."""


def split(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with its template expressions replaced by placeholders, and what each placeholder stands for."""
    pieces: list[tuple[str, bool]] = []  # (text, is template)
    last = 0
    for match in _EXPRESSION.finditer(text):
        if match.start() > last:
            pieces.append((text[last:match.start()], False))
        pieces.append((match.group(), True))
        last = match.end()
    if last < len(text):
        pieces.append((text[last:], False))
    groups: list[tuple[str, bool]] = []
    depth = 0  # inside {{ range }}, {{ with }} or {{ if }}: punctuation there belongs to the template
    for i, (piece, template) in enumerate(pieces):
        glue = (not template and depth > 0 and i < len(pieces) - 1 and pieces[i + 1][1] and _GLUE.match(piece))
        if groups and groups[-1][1] and (template or glue):
            groups[-1] = (groups[-1][0] + piece, True)
        else:
            groups.append((piece, template))
        if template:
            depth += 1 if _OPEN.match(piece) else -1 if piece.replace(" ", "") == "{{end}}" else 0
    names: dict[str, str] = {}
    by_code: dict[str, str] = {}
    out: list[str] = []
    for piece, template in groups:
        if not template:
            out.append(piece)
            continue
        if piece not in by_code:
            label = _LABEL.match(piece)
            base = label.group(1) if label else "value" if piece.startswith("{{ $value") and piece.count("{{") == 1 else "q"
            name = base if base != "q" and base not in names else f"{base}{sum(1 for n in names if n.startswith(base)) + 1}"
            by_code[piece], names[name] = name, piece
        out.append("{" + by_code[piece] + "}")
    return "".join(out), names


def join(message: str, names: dict[str, str]) -> str:
    """``message`` with its placeholders put back; raises KeyError for a placeholder ``names`` lacks."""
    return _PLACEHOLDER.sub(lambda m: names[m.group(1)], message)


def _alerts(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule


def messages(source: Path = SOURCE) -> list[tuple[str, str, str]]:
    """``(alert, annotation, msgid)`` of every translatable annotation in ``source``."""
    doc = yaml.safe_load(source.read_text())
    return [(rule["alert"], key, split(rule["annotations"][key])[0])
            for rule in _alerts(doc) for key in ANNOTATIONS if key in rule.get("annotations", {})]


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def localize(t: Translator, source: Path = SOURCE) -> str:
    """The rule file of ``source`` with its alert annotations in ``t``'s language."""
    doc = yaml.safe_load(source.read_text())
    for rule in _alerts(doc):
        annotations = rule.get("annotations", {})
        for key in ANNOTATIONS:
            if key in annotations:
                msgid, names = split(annotations[key])
                annotations[key] = join(t._(msgid), names)
    header = (f"# Generated from alerts.yaml and the {t.lang} catalog by `python -m llm_cost_tracker.i18n.alerts`:\n"
              "# do not edit; change alerts.yaml or src/llm_cost_tracker/locale/ and regenerate.\n")
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 16)
    return header + body


def target(lang: str, source: Path = SOURCE) -> Path:
    return source.with_name(f"{source.stem}.{lang}{source.suffix}")


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) every ``alerts.<lang>.yaml``."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        text = localize(Translator(lang, lang))
        path = target(lang)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"not current: {', '.join(stale)}; run python -m llm_cost_tracker.i18n.alerts", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
