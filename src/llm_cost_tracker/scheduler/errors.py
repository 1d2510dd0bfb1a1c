"""Errors the scheduler raises, so callers can tell bad input from an impossible instance."""

from __future__ import annotations


class ParseError(ValueError):
    """A malformed instance file; the message names the file and line so it can be fixed."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.reason = message


class InfeasibleError(ValueError):
    """The instance provably has no feasible schedule (e.g. the budget is below the cheapest plan)."""
