"""The receiver's gate: which principal a request's bearer token names, and whether its tenant may send now."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from llm_cost_tracker.access.ratelimit import RateLimiter
from llm_cost_tracker.access.tokens import Principal, TokenTable

ANONYMOUS = Principal(None, admin=False)


class AccessGuard:
    """Authenticates bearer tokens against the token table in force and applies tenant rate limits.

    Args:
        tokens: returns the current :class:`TokenTable` (reloadable).
        limiter: per-tenant token buckets.
    """

    def __init__(self, tokens: Callable[[], TokenTable], limiter: RateLimiter | None = None) -> None:
        self._tokens = tokens
        self._limiter = limiter or RateLimiter()

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Principal | None:
        """The caller's principal; ANONYMOUS when no tokens are configured; None when refused."""
        table = self._tokens()
        if not table.enabled:
            return ANONYMOUS
        for key, value in metadata:
            if key == "authorization":
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                return table.lookup(token.strip())
        return None

    def admit(self, principal: Principal, spans: int, size: int) -> float:
        """0.0 when the tenant may send ``spans`` spans in ``size`` bytes now, else seconds to wait."""
        if principal.tenant is None:
            return 0.0
        return self._limiter.admit(principal.tenant, spans, size)


REFUSED_MESSAGE = "missing or unknown bearer token: send 'Authorization: Bearer <token>'"


def http_principal(guard: AccessGuard | None, headers: Mapping[str, str]) -> Principal | None:
    """The principal of an HTTP request (lower-cased ``headers``): ANONYMOUS without a guard, None when refused.

    The HTTP APIs (budgets, schedules) answer None with 401 and :data:`REFUSED_MESSAGE`.
    """
    if guard is None:
        return ANONYMOUS
    return guard.authenticate([("authorization", headers.get("authorization", ""))])
