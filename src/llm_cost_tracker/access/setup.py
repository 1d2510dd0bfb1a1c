"""Builds the access objects of a receiver from its section (``settings.access``; shared by every flavour)."""

from __future__ import annotations

from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llm_cost_tracker.access.cardinality import LabelFolder
from llm_cost_tracker.access.guard import AccessGuard, metrics_allowed
from llm_cost_tracker.access.tokens import ReloadingTokens, TokenTable
from llm_cost_tracker.config import AccessConfig, config_sections
from llm_cost_tracker.httpserver import HttpServer, Request, Response


def load_tokens(access: AccessConfig, config_file: str) -> ReloadingTokens:
    """Tokens from ``--auth-token``/``--metrics-token`` and ``config_file``'s ``[auth]`` table, reloadable on SIGHUP."""

    def load() -> TokenTable:
        section = config_sections(config_file).get("auth", {})
        return TokenTable.parse(section, legacy_token=access.auth_token, metrics_token=access.metrics_token)

    return ReloadingTokens(load)


def apply_label_limits(folder: LabelFolder, table: TokenTable) -> None:
    """Give each configured tenant its own model, service and provider label quotas."""
    for policy in table.tenants.values():
        folder.set_limit(policy.name, "model", policy.max_models)
        folder.set_limit(policy.name, "service", policy.max_services)
        folder.set_limit(policy.name, "provider", policy.max_providers)


def build_guard(tokens: ReloadingTokens, access: AccessConfig | None = None) -> AccessGuard:
    return AccessGuard(lambda: tokens.current,
                       admin_tenant_from_payload=bool(access and access.admin_tenant_from_payload))


def guard_metrics(http: HttpServer, registry: CollectorRegistry, guard: AccessGuard) -> None:
    """Serve ``/metrics`` on ``http`` only to admin and metrics tokens when any token is configured.

    Its labels name every tenant's services, models and budgets (with their limits and spend), so a
    tenant's token, or none, gets 401 like the other APIs.

    ``?name[]=<sample name>`` (repeatable, as the Prometheus Python client's own handler reads it) answers with
    those families' samples only: a poller that watches one counter (a benchmark waiting for its spans, a
    readiness script) costs the service the formatting of that counter, not of every series (0.6 against
    7.6 ms of CPU, under the GIL, for a service holding ~500 series: ten such polls a second would take ~7%
    of a core from the pipeline).
    """

    def metrics(request: Request) -> Response:
        if not metrics_allowed(guard, request.headers):
            return Response.json(401, {"error": "/metrics needs an admin or metrics bearer token: send "
                                                "'Authorization: Bearer <token>' (Prometheus: authorization.credentials)"})
        names = parse_qs(request.query).get("name[]")
        source = registry.restricted_registry(names) if names else registry
        return Response(200, generate_latest(source), CONTENT_TYPE_LATEST)

    http.route("GET", "/metrics", metrics)
