"""Bounds on the label values one tenant can create, so metrics cardinality cannot explode."""

from __future__ import annotations

import threading

OTHER = "other"


class LabelFolder:
    """Keeps the first ``limit`` distinct values per (tenant, label); later ones fold into ``other``.

    Args:
        default_limit: used for tenants without their own limit.
    """

    def __init__(self, default_limit: int = 200) -> None:
        self._default = default_limit
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._limits: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.folded = 0

    def set_limit(self, tenant: str, label: str, limit: int) -> None:
        self._limits[(tenant, label)] = limit

    def fold(self, tenant: str, label: str, value: str) -> str:
        key = (tenant, label)
        seen = self._seen.get(key)
        if seen is not None and value in seen:
            return value
        with self._lock:
            seen = self._seen.setdefault(key, set())
            if value in seen:
                return value
            if len(seen) < self._limits.get(key, self._default):
                seen.add(value)
                return value
            self.folded += 1
            return OTHER
