"""Settings from their sources, lowest precedence first: defaults, a TOML file (``--config``), ``LCT_*``
environment variables, command-line flags; every problem of every source and section reported at once."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

from llm_cost_tracker.config._checks import ConfigError
from llm_cost_tracker.config._settings import Settings

__all__ = ["AUXILIARY_ENV", "ENV_PREFIX", "config_sections", "load", "unknown_environment"]

ENV_PREFIX = "LCT_"
AUXILIARY_ENV = frozenset({"LCT_CONFIG", "LCT_SCHEDULING_DATA"})
"""``LCT_*`` variables that are not settings but are read elsewhere (the config file's path; the benchmark
instances of ``benchmarks/scheduling.py``): never reported as unknown."""

_TYPES: dict[str, Any] = get_type_hints(Settings)


def _coerce(name: str, raw: Any) -> Any:
    kind = _TYPES[name]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    try:
        if kind is int and not isinstance(raw, bool | float):
            return int(raw)
        if kind is float and not isinstance(raw, bool):
            return float(raw)
    except ValueError:
        pass
    else:
        if kind is str:
            return str(raw)
    raise ValueError(f"{name}: expected {kind.__name__}, got {raw!r}")


def load(
    overrides: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, TOML file, ``LCT_*`` environment and ``overrides`` (flags) into Settings.

    Args:
        overrides: values from the command line; ``None`` values are ignored.
        config_file: TOML file with top-level keys named like the fields (``-`` or ``_``).
        environ: the environment to read (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    problems: list[str] = []

    def take(source: str, key: str, raw: Any) -> None:
        name = key.replace("-", "_").lower()
        if name not in names:
            problems.append(f"{source}: unknown setting {key!r}")
            return
        try:
            values[name] = _coerce(name, raw)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")

    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        values["config_file"] = str(config_file)
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"config file {config_file}: {exc}"]) from exc
        for key, raw in data.items():
            if isinstance(raw, dict) or (isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw)):
                continue  # tables and arrays of tables (budgets, pricing, ...) belong to their own modules
            take(f"config file {config_file}", key, raw)
    for key, raw in environ.items():
        # an LCT_* variable that is not a setting is ignored here (unknown_environment() names it for a
        # warning): the environment is shared with other tools and Kubernetes, and must never stop a start
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() in names:
            take(f"environment {key}", key[len(ENV_PREFIX):], raw)
    for key, raw in (overrides or {}).items():
        if raw is not None:
            take("flag", key, raw)
    try:
        settings = Settings(**values).validate()
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return settings


def unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LCT_*`` variables that :func:`load` ignored, each with a hint: "LCT_X (did you mean LCT_Y?)".

    Only names are returned, never values (a value may be a secret).
    """
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)}
    known = {ENV_PREFIX + n.upper() for n in names}
    out = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in AUXILIARY_ENV or key[len(ENV_PREFIX):].lower() in names:
            continue
        close = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.8)
        out.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return out


def config_sections(config_file: str | Path | None) -> dict[str, Any]:
    """The TOML tables of the config file (e.g. ``[budgets]``), for modules that own them."""
    if not config_file:
        return {}
    data = tomllib.loads(Path(config_file).read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict | list) and not isinstance(v, str)}
