"""Bearer tokens mapped to tenants, from the ``[auth]`` table of the configuration file.

Tokens are looked up by their SHA-256, so the table can hold hashes instead of secrets
(``token_sha256``) and a lookup costs the same whatever the token. Several tokens per tenant allow
rotation: add the new one, reload (SIGHUP), move the senders, remove the old one, reload.

```toml
[auth]
admin_tokens = ["..."]            # see every tenant's budgets and /metrics; spans: see docs/hardening.md
metrics_tokens = ["..."]          # may read /metrics and nothing else (the Prometheus scrape)
[[auth.tenants]]
name = "acme"
tokens = ["acme-2026-11"]
token_sha256 = ["5e88...a1"]      # same, given as hashes
spans_per_second = 5000           # optional rate limits (token buckets)
bytes_per_second = 20_000_000
burst_seconds = 2
max_models = 50                   # distinct model label values before folding into "other"
max_services = 200                # ... service label values
max_providers = 20                # ... provider label values
```
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_cost_tracker.config import ConfigError


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """What one tenant may do."""

    name: str
    spans_per_second: float = 0.0
    """0 means unlimited."""
    bytes_per_second: float = 0.0
    burst_seconds: float = 2.0
    max_models: int = 200
    max_services: int = 200
    max_providers: int = 20


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a token identifies: a tenant, an admin, or both."""

    tenant: TenantPolicy | None
    admin: bool = False

    @property
    def tenant_name(self) -> str:
        return self.tenant.name if self.tenant else ""


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenTable:
    """Immutable token -> principal map; ``enabled`` is False when no token is configured at all."""

    by_hash: Mapping[str, Principal] = field(default_factory=dict)
    tenants: Mapping[str, TenantPolicy] = field(default_factory=dict)
    scrape: frozenset[str] = frozenset()
    """SHA-256 of the tokens that may read /metrics (besides admin tokens) and nothing else."""

    @property
    def enabled(self) -> bool:
        return bool(self.by_hash)

    @property
    def protects_metrics(self) -> bool:
        """/metrics needs a token: any token is configured (its labels name tenants' services and budgets)."""
        return bool(self.by_hash or self.scrape)

    def lookup(self, token: str) -> Principal | None:
        return self.by_hash.get(sha256_hex(token))

    def may_scrape(self, token: str) -> bool:
        """True for a metrics token or an admin token."""
        digest = sha256_hex(token)
        principal = self.by_hash.get(digest)
        return digest in self.scrape or (principal is not None and principal.admin)

    @classmethod
    def parse(cls, section: Mapping[str, Any], legacy_token: str = "", metrics_token: str = "") -> TokenTable:
        """Build from the ``[auth]`` table (plus the single ``--auth-token`` and ``--metrics-token``); lists
        every problem at once."""
        problems: list[str] = []
        by_hash: dict[str, Principal] = {}
        tenants: dict[str, TenantPolicy] = {}
        scrape = {sha256_hex(str(t)) for t in section.get("metrics_tokens", [])}
        scrape |= {str(h).lower() for h in section.get("metrics_token_sha256", [])}
        if metrics_token:
            scrape.add(sha256_hex(metrics_token))

        def add(digest: str, principal: Principal, where: str) -> None:
            if digest in by_hash:
                problems.append(f"auth: {where}: token is already used by another entry")
            by_hash[digest] = principal

        if legacy_token:
            add(sha256_hex(legacy_token), Principal(None, admin=True), "--auth-token")
        unknown = set(section) - {"admin_tokens", "admin_token_sha256", "tenants", "metrics_tokens",
                                  "metrics_token_sha256"}
        if unknown:
            problems.append(f"auth: unknown keys {sorted(unknown)}")
        for token in section.get("admin_tokens", []):
            add(sha256_hex(str(token)), Principal(None, admin=True), "admin_tokens")
        for digest in section.get("admin_token_sha256", []):
            add(str(digest).lower(), Principal(None, admin=True), "admin_token_sha256")
        for i, raw in enumerate(section.get("tenants", [])):
            where = f"auth.tenants[{i}]"
            if not isinstance(raw, Mapping) or not raw.get("name"):
                problems.append(f"{where}: needs a name")
                continue
            extra = set(raw) - {"name", "tokens", "token_sha256", "spans_per_second", "bytes_per_second",
                                "burst_seconds", "max_models", "max_services", "max_providers"}
            if extra:
                problems.append(f"{where}: unknown keys {sorted(extra)}")
            try:
                policy = TenantPolicy(
                    name=str(raw["name"]),
                    spans_per_second=float(raw.get("spans_per_second", 0)),
                    bytes_per_second=float(raw.get("bytes_per_second", 0)),
                    burst_seconds=float(raw.get("burst_seconds", 2.0)),
                    max_models=int(raw.get("max_models", 200)),
                    max_services=int(raw.get("max_services", 200)),
                    max_providers=int(raw.get("max_providers", 20)),
                )
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
                continue
            if min(policy.spans_per_second, policy.bytes_per_second) < 0 or policy.burst_seconds <= 0:
                problems.append(f"{where}: rates must be >= 0 and burst_seconds > 0")
            if policy.name in tenants:
                problems.append(f"{where}: tenant {policy.name!r} is listed twice")
            tenants[policy.name] = policy
            hashes = [sha256_hex(str(t)) for t in raw.get("tokens", [])]
            hashes += [str(h).lower() for h in raw.get("token_sha256", [])]
            if not hashes:
                problems.append(f"{where}: tenant {policy.name!r} has no tokens")
            for digest in hashes:
                if len(digest) != 64:
                    problems.append(f"{where}: token_sha256 must be 64 hex digits")
                add(digest, Principal(policy), where)
        if scrape & by_hash.keys():
            problems.append("auth: a metrics token is also used by another entry (give the scrape its own token)")
        if problems:
            raise ConfigError(problems)
        return cls(by_hash, tenants, frozenset(scrape))


class ReloadingTokens:
    """The token table in force, swapped atomically by :meth:`reload` (rotation without restart)."""

    def __init__(self, load: Any) -> None:
        self._load = load
        self._lock = threading.Lock()
        self.current: TokenTable = load()

    def reload(self) -> None:
        """Load again; on error keep the table in force and raise."""
        table = self._load()
        with self._lock:
            self.current = table
