"""ClickHouse-style failures of the SQL endpoint: an exception code, its name, and the HTTP status.

Clients (clickhouse-connect, Grafana, JDBC) read the body ``Code: N. DB::Exception: ... (NAME)`` and the
``X-ClickHouse-Exception-Code`` header, so refusals decided here and errors raised by the engine are
answered in the same shape.
"""

from __future__ import annotations

import re

__all__ = ["SqlError", "from_engine"]

_STATUS = {164: 403, 497: 403, 516: 401, 60: 404, 81: 404, 46: 404, 62: 400, 115: 400, 36: 400, 47: 400,
           456: 400, 457: 400, 159: 504, 202: 503, 241: 507, 396: 500}
_ENGINE = re.compile(r"Code: (\d+)\. DB::Exception: (?:Code: \d+\. DB::Exception: )?(.*)", re.S)
_SCOPE = re.compile(r"\s*:?\s*In scope SELECT formatQuery\(.*$", re.S)
_NAME = re.compile(r"[\s.]*\(([A-Z_]+)\)[\s.]*$")
_VERSION = re.compile(r"\s*\(version [^)]*\)")


class SqlError(Exception):
    """A refused or failed query, rendered as ClickHouse renders its exceptions."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 500)

    def body(self) -> bytes:
        return f"Code: {self.code}. DB::Exception: {self.message}. ({self.name})\n".encode()


def from_engine(exc: Exception) -> SqlError:
    """The engine's own error (chDB raises RuntimeError with ClickHouse's text) as a :class:`SqlError`."""
    text = str(exc).strip()
    match = _ENGINE.match(text)
    if not match:
        return SqlError(1001, "STD_EXCEPTION", text.splitlines()[0] if text else type(exc).__name__)
    message = _VERSION.sub("", match.group(2).strip())
    name = _NAME.search(message)
    while _NAME.search(message):
        message = _NAME.sub("", message)  # the engine repeats the name when it wraps its own error
    message = _SCOPE.sub("", message).rstrip(" .")
    return SqlError(int(match.group(1)), name.group(1) if name else "UNKNOWN_EXCEPTION", message)
