"""Validation of one file: a catalog data file or a user price file, every error listed at once."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from llm_cost_tracker.pricing._model import parse_document
from llm_cost_tracker.pricing._overrides import parse_overrides


def validate_file(path: str | Path) -> tuple[list[str], str]:
    """``(errors, summary)`` for a data file (``schema_version`` + ``models``) or a user price file."""
    path = Path(path)
    errors: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            doc: object = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot read: {exc}"], ""
    except Exception as exc:  # noqa: BLE001 - yaml's errors are not ValueErrors
        return [f"{path}: cannot parse: {exc}"], ""
    if isinstance(doc, dict) and "models" in doc and "schema_version" in doc:
        entries = parse_document(doc, str(path), errors)
        return errors, f"catalog data file, {len(entries)} entries"
    overrides = parse_overrides(doc, errors, str(path))
    tenants = sum(len(v) for v in overrides.tenant_entries.values())
    return errors, (
        f"user price file: {len(overrides.entries)} models, {tenants} tenant models, "
        f"{len(overrides.aliases)} aliases, {len(overrides.discounts)} discounts"
    )
