"""HTTP routes of the budgets: ``GET /v1/budgets``, ``GET /v1/budgets/{name}``, ``POST /v1/advice``.

Every answer is JSON; errors are ``{"error": "<what is wrong and how to fix it>"}`` with 400 (bad
request), 401 (no or unknown bearer token, when tokens are configured), 404 (unknown budget) or 503
(the store cannot be read right now; retry).

Access: when the service has bearer tokens (``[auth]``), every call needs one. A tenant's token sees
only the budgets scoped to exactly that tenant, and its advice considers only those; an admin token
sees all. A budget a caller may not see answers 404, like one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llm_cost_tracker.access.guard import ANONYMOUS, AccessGuard
from llm_cost_tracker.access.tokens import Principal
from llm_cost_tracker.budgets._config import Budget
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.httpserver import HttpServer, Request, Response

ADVICE_FIELDS = {"model": "a model name", "tenant": "a tenant", "service": "a service name",
                 "provider": "a provider name", "attributes": "a table of span attribute = value"}


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


class BudgetsApi:
    """Request handlers over a :class:`BudgetService`.

    Args:
        service: the budget service.
        guard: authenticates callers (everyone sees everything without one).
    """

    def __init__(self, service: BudgetService, guard: AccessGuard | None = None) -> None:
        self._service = service
        self._guard = guard

    def register(self, http: HttpServer) -> None:
        http.route("GET", "/v1/budgets", self._authenticated(self.list_budgets))
        http.route("GET", "/v1/budgets/", self._authenticated(self.get_budget), prefix=True)
        http.route("POST", "/v1/advice", self._authenticated(self.advice))

    def _authenticated(self, handler: Callable[[Request, Principal], Response]) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            principal = ANONYMOUS
            if self._guard is not None:
                found = self._guard.authenticate([("authorization", request.headers.get("authorization", ""))])
                if found is None:
                    return _error(401, "missing or unknown bearer token: send 'Authorization: Bearer <token>'")
                principal = found
            return handler(request, principal)

        return serve

    @staticmethod
    def _visible(principal: Principal) -> Callable[[Budget], bool] | None:
        if principal.tenant is None:
            return None  # admins, and everyone when no tokens are configured
        tenant = principal.tenant.name
        return lambda budget: budget.scope.tenant == (tenant,)

    def list_budgets(self, _request: Request, principal: Principal) -> Response:
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; retry shortly")
        visible = self._visible(principal)
        return Response.json(200, {"budgets": [st.to_json() for _, st in sorted(statuses.items())
                                               if visible is None or visible(st.budget)]})

    def get_budget(self, request: Request, principal: Principal) -> Response:
        name = request.path[len("/v1/budgets/"):]
        visible = self._visible(principal)
        if name not in self._service.budgets or (visible is not None and not visible(self._service.budgets[name])):
            known = ", ".join(sorted(self._service.budgets)) or "none configured"
            return _error(404, f"no budget named {name!r} (known: {known})")
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; retry shortly")
        return Response.json(200, statuses[name].to_json())

    def advice(self, request: Request, principal: Principal) -> Response:
        try:
            body: Any = json.loads(request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"body must be a JSON object like {{\"model\": \"gpt-4o\", \"tenant\": \"acme\"}}: {exc}")
        if not isinstance(body, dict):
            return _error(400, f"body must be a JSON object, got {type(body).__name__}")
        problems = [f"unknown field {k!r} (known: {', '.join(ADVICE_FIELDS)})" for k in body if k not in ADVICE_FIELDS]
        if not isinstance(body.get("model"), str) or not body.get("model"):
            problems.append("'model' is required: the model the application means to call")
        for key in ("tenant", "service", "provider"):
            if key in body and not isinstance(body[key], str):
                problems.append(f"{key!r} must be a string ({ADVICE_FIELDS[key]})")
        attrs = body.get("attributes", {})
        if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
            problems.append("'attributes' must be an object of string values")
        if problems:
            return _error(400, "; ".join(problems))
        try:
            tenant = principal.tenant.name if principal.tenant is not None else body.get("tenant", "")
            answer = self._service.advise(body["model"], tenant, body.get("service", ""),
                                          body.get("provider", ""), attrs, visible=self._visible(principal))
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; until it recovers, use the requested model")
        return Response.json(200, answer)
