"""The checks the configuration sections share, and the one error that carries all their problems.

A check returns problem lines, never raises: a section lists every problem it has, and
:meth:`~llm_cost_tracker.config.Settings.validate` joins the sections' lists into one error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "at_least_zero", "listens", "missing_files", "positive", "split_host_port"]


class ConfigError(ValueError):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


def listens(address: str) -> bool:
    """Whether an optional listener's address setting names one ('off' or empty: none)."""
    return address.strip().lower() not in ("", "off")


def split_host_port(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) and check the port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0-65535, got {port!r}")
    return host.strip("[]"), int(port)


def positive(section: Any, *names: str) -> list[str]:
    """``name: must be > 0`` for each of ``names`` that is not."""
    return [f"{name}: must be > 0, got {getattr(section, name)}" for name in names if getattr(section, name) <= 0]


def at_least_zero(section: Any, *names: str, note: str = "") -> list[str]:
    """``name: must be >= 0`` for each of ``names`` that is negative (``note`` says what 0 means)."""
    return [f"{name}: must be >= 0{note}, got {getattr(section, name)}" for name in names
            if getattr(section, name) < 0]


def missing_files(section: Any, *names: str) -> list[str]:
    """``name: no such file`` for each of ``names`` set to a path that is not a file."""
    return [f"{name}: no such file {getattr(section, name)!r}" for name in names
            if getattr(section, name) and not Path(getattr(section, name)).is_file()]
