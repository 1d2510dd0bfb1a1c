"""Bounds on the label values clients can create, so metrics cardinality (and memory) cannot explode.

Every label whose values come from spans (service, provider, model) is folded: a tenant keeps its first
``limit`` distinct values per label, every tenant together at most ``global_limit``; a value longer than
:data:`MAX_VALUE_CHARS` is never a label value; tenants past :data:`MAX_TENANTS` share one quota (without
tokens the payload names the tenant, so tenants are client input too). Whatever does not fit becomes
``other`` and is counted (``llm_metric_labels_folded_total``).
"""

from __future__ import annotations

import threading

__all__ = ["MAX_TENANTS", "MAX_VALUE_CHARS", "OTHER", "LabelFolder"]

OTHER = "other"
MAX_VALUE_CHARS = 256
"""Longer label values fold: a 64 KiB model name is not a label."""
MAX_TENANTS = 10_000
"""Tenants with their own quotas; later ones share the quotas of the tenant key ``other``."""


class LabelFolder:
    """Keeps the first ``limit`` distinct values per (tenant, label); later ones fold into ``other``.

    Args:
        default_limit: used for tenants without their own limit.
        global_limit: distinct values of one label over every tenant.
    """

    def __init__(self, default_limit: int = 200, global_limit: int = 2000) -> None:
        self._default = default_limit
        self._global_limit = global_limit
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._all: dict[str, set[str]] = {}
        self._limits: dict[tuple[str, str], int] = {}
        self._tenants: set[str] = set()
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
            if tenant not in self._tenants:
                if len(self._tenants) >= MAX_TENANTS and (tenant, label) not in self._limits:
                    tenant = OTHER
                    key = (tenant, label)
                self._tenants.add(tenant)
            seen = self._seen.setdefault(key, set())
            if value in seen:
                return value
            everyone = self._all.setdefault(label, set())
            if (len(value) <= MAX_VALUE_CHARS and len(seen) < self._limits.get(key, self._default)
                    and (value in everyone or len(everyone) < self._global_limit)):
                seen.add(value)
                everyone.add(value)
                return value
            self.folded += 1
            return OTHER
