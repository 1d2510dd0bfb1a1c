"""Settings of the SQL endpoint (``sql_*`` in :class:`~llm_cost_tracker.config.Settings`), checked together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SqlHttpConfig", "problems"]

OFF = ("", "off", "none", "false", "0")


@dataclass(frozen=True, slots=True)
class SqlHttpConfig:
    """Where the endpoint listens and the limits every query runs under."""

    address: str
    max_execution_seconds: float
    max_result_rows: int
    max_result_bytes: int
    max_memory_bytes: int
    max_concurrent: int
    max_threads: int

    @property
    def enabled(self) -> bool:
        return self.address.strip().lower() not in OFF

    @classmethod
    def from_settings(cls, s: Any) -> SqlHttpConfig:
        return cls(s.sql_http, s.sql_max_execution_seconds, s.sql_max_result_rows, s.sql_max_result_bytes,
                   s.sql_max_memory_bytes, s.sql_max_concurrent, s.sql_max_threads)


def problems(s: Any) -> list[str]:
    """Every problem with the ``sql_*`` settings (empty when usable)."""
    from llm_cost_tracker.config import split_host_port

    config = SqlHttpConfig.from_settings(s)
    out: list[str] = []
    if config.enabled:
        try:
            split_host_port(config.address)
        except ValueError as exc:
            out.append(f"sql_http: {exc} (or 'off')")
    for name in ("sql_max_execution_seconds", "sql_max_result_rows", "sql_max_result_bytes", "sql_max_memory_bytes",
                 "sql_max_concurrent", "sql_max_threads"):
        if getattr(s, name) <= 0:
            out.append(f"{name}: must be > 0, got {getattr(s, name)}")
    return out
