"""The receiver's gate: which principal a request's bearer token names, and whether its tenant may send now."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from llm_cost_tracker.access.ratelimit import OverBurst, RateLimiter
from llm_cost_tracker.access.tokens import Principal, TokenTable

__all__ = ["ANONYMOUS", "KEEP_PAYLOAD_TENANT", "REFUSED_MESSAGE", "TENANT_HEADER", "AccessGuard", "OverBurst",
           "http_principal", "metrics_allowed"]

ANONYMOUS = Principal(None, admin=False)
TENANT_HEADER = "lct-tenant"
"""Request header (gRPC metadata) with which an admin token names the tenant of the spans it sends."""
KEEP_PAYLOAD_TENANT = None
""":meth:`AccessGuard.tenant_for`'s answer when the payload's tenant attribute decides."""
Metadata = Sequence[tuple[str, str | bytes]]


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def bearer_token(values: Sequence[str | bytes]) -> str | None:
    """The token of the one ``authorization`` value in ``values``; None when there is none, more than one
    (servers disagree on which one counts: gRPC saw the first, HTTP the last), or it is not a bearer token.

    A value with a comma is refused too: an HTTP server joins repeated fields with commas (RFC 9110), and
    no bearer token holds one (RFC 6750).
    """
    if len(values) != 1:
        return None
    scheme, _, token = _text(values[0]).partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or "," in token:
        return None
    return token


class AccessGuard:
    """Authenticates bearer tokens against the token table in force and applies tenant rate limits.

    Args:
        tokens: returns the current :class:`TokenTable` (reloadable).
        limiter: per-tenant token buckets.
        admin_tenant_from_payload: spans sent with an admin token keep their payload's tenant (a trusted
            gateway); otherwise an admin request names its tenant with :data:`TENANT_HEADER`, or has none.
    """

    def __init__(self, tokens: Callable[[], TokenTable], limiter: RateLimiter | None = None,
                 admin_tenant_from_payload: bool = False) -> None:
        self._tokens = tokens
        self._limiter = limiter or RateLimiter()
        self._admin_payload = admin_tenant_from_payload

    def authenticate(self, metadata: Metadata) -> Principal | None:
        """The caller's principal; ANONYMOUS when no tokens are configured; None when refused."""
        table = self._tokens()
        if not table.enabled:
            return ANONYMOUS
        token = bearer_token([v for k, v in metadata if k == "authorization"])
        return None if token is None else table.lookup(token)

    def tenant_for(self, principal: Principal, metadata: Metadata) -> str | None:
        """The tenant of the spans ``principal`` sends: a tenant token's own; for an admin, the one
        :data:`TENANT_HEADER` names, else the payload's with ``admin_tenant_from_payload``, else none ("");
        without tokens, the payload's (:data:`KEEP_PAYLOAD_TENANT`).

        Raises:
            ValueError: an admin request names more than one tenant.
        """
        if principal.tenant is not None:
            return principal.tenant.name  # the token decides the tenant, not the payload
        if not principal.admin:
            return KEEP_PAYLOAD_TENANT  # no tokens configured: the payload is all there is
        named = [_text(v) for k, v in metadata if k == TENANT_HEADER]
        if len(named) > 1:
            raise ValueError(f"{len(named)} '{TENANT_HEADER}' headers: name one tenant per request")
        if named:
            return named[0]
        return KEEP_PAYLOAD_TENANT if self._admin_payload else ""

    def admit(self, principal: Principal, spans: int | None, size: int, charge: bool = True) -> float:
        """0.0 when the tenant may send ``spans`` spans in ``size`` bytes now, else seconds to wait.

        ``spans`` None checks the bytes alone, before parsing; ``charge`` False only looks.

        Raises:
            OverBurst: the request is bigger than the tenant's burst (never admitted).
        """
        if principal.tenant is None:
            return 0.0
        return self._limiter.admit(principal.tenant, spans, size, charge)

    def may_scrape(self, headers: Mapping[str, str]) -> bool:
        """Whether an HTTP request (lower-cased ``headers``) may read /metrics."""
        table = self._tokens()
        if not table.protects_metrics:
            return True
        token = bearer_token([headers["authorization"]] if "authorization" in headers else [])
        return token is not None and table.may_scrape(token)


REFUSED_MESSAGE = "missing or unknown bearer token: send 'Authorization: Bearer <token>'"


def http_principal(guard: AccessGuard | None, headers: Mapping[str, str]) -> Principal | None:
    """The principal of an HTTP request (lower-cased ``headers``): ANONYMOUS without a guard, None when refused.

    The HTTP APIs (budgets, schedules) answer None with 401 and :data:`REFUSED_MESSAGE`. Repeated
    ``Authorization`` fields arrive joined with commas and are refused.
    """
    if guard is None:
        return ANONYMOUS
    return guard.authenticate([("authorization", headers["authorization"])] if "authorization" in headers else [])


def metrics_allowed(guard: AccessGuard | None, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP request may read /metrics (always without a guard)."""
    return guard is None or guard.may_scrape(headers)
