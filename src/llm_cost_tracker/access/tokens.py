"""Bearer tokens mapped to tenants, from the ``[auth]`` table of the configuration file.

Tokens are looked up by their SHA-256, so the table can hold hashes instead of secrets
(``token_sha256``) and a lookup costs the same whatever the token. Several tokens per tenant allow
rotation: add the new one, reload (SIGHUP), move the senders, remove the old one, reload.

```toml
[auth]
admin_tokens = ["..."]            # see every tenant's budgets; may write spans with their own tenant
[[auth.tenants]]
name = "acme"
tokens = ["acme-2026-11"]
token_sha256 = ["5e88...a1"]      # same, given as hashes
spans_per_second = 5000           # optional rate limits (token buckets)
bytes_per_second = 20_000_000
burst_seconds = 2
max_models = 50                   # distinct model label values before folding into "other"
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

    @property
    def enabled(self) -> bool:
        return bool(self.by_hash)

    def lookup(self, token: str) -> Principal | None:
        return self.by_hash.get(sha256_hex(token))

    @classmethod
    def parse(cls, section: Mapping[str, Any], legacy_token: str = "") -> TokenTable:
        """Build from the ``[auth]`` table (plus the single ``--auth-token``); lists every problem at once."""
        problems: list[str] = []
        by_hash: dict[str, Principal] = {}
        tenants: dict[str, TenantPolicy] = {}

        def add(digest: str, principal: Principal, where: str) -> None:
            if digest in by_hash:
                problems.append(f"auth: {where}: token is already used by another entry")
            by_hash[digest] = principal

        if legacy_token:
            add(sha256_hex(legacy_token), Principal(None, admin=True), "--auth-token")
        unknown = set(section) - {"admin_tokens", "admin_token_sha256", "tenants"}
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
                                "burst_seconds", "max_models", "max_services"}
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
        if problems:
            raise ConfigError(problems)
        return cls(by_hash, tenants)


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
