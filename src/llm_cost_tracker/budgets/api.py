"""HTTP routes of the budgets: ``GET /v1/budgets``, ``GET /v1/budgets/{name}``, ``POST /v1/advice``.

Every answer is JSON; errors are ``{"error": "<what is wrong and how to fix it>"}`` with 400 (bad
request), 401 (no or unknown bearer token, when tokens are configured), 404 (unknown budget) or 503
(the store cannot be read right now; retry).

Access: when the service has bearer tokens (``[auth]``), every call needs one. A tenant's token sees
only the budgets scoped to exactly that tenant, and its advice considers only those; an admin token
sees all. A budget a caller may not see answers 404, like one that does not exist.

Language: ``error`` messages and advice ``reason`` follow the request's ``Accept-Language`` (en, es,
fr, de, ja, zh), else the service's language (``lang`` setting, ``LCT_LANG`` or the environment's
locale); every key and enum value stays English (docs/localization.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_cost_tracker.access.guard import AccessGuard, http_principal
from llm_cost_tracker.access.tokens import Principal
from llm_cost_tracker.budgets._config import Budget
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.httpserver import HttpServer, Request, Response, loads_json
from llm_cost_tracker.i18n import N_, Translator, negotiate, translator

ADVICE_FIELDS = {"model": N_("a model name"), "tenant": N_("a tenant"), "service": N_("a service name"),
                 "provider": N_("a provider name"), "attributes": N_("a table of span attribute = value")}


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


class BudgetsApi:
    """Request handlers over a :class:`BudgetService`.

    Args:
        service: the budget service.
        guard: authenticates callers (everyone sees everything without one).
        lang: language of messages when a request has no usable ``Accept-Language`` (empty:
            ``LCT_LANG``, else the environment's locale).
    """

    def __init__(self, service: BudgetService, guard: AccessGuard | None = None, lang: str = "") -> None:
        self._service = service
        self._guard = guard
        self._default = translator(lang or None)

    def _translator(self, request: Request) -> Translator:
        return negotiate(request.headers.get("accept-language", ""), self._default)

    def register(self, http: HttpServer) -> None:
        http.route("GET", "/v1/budgets", self._authenticated(self.list_budgets))
        http.route("GET", "/v1/budgets/", self._authenticated(self.get_budget), prefix=True)
        http.route("POST", "/v1/advice", self._authenticated(self.advice))

    def _authenticated(self, handler: Callable[[Request, Principal], Response]) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            principal = http_principal(self._guard, request.headers)
            if principal is None:
                t = self._translator(request)
                return _error(401, t._("missing or unknown bearer token: send 'Authorization: Bearer <token>'"))
            return handler(request, principal)

        return serve

    @staticmethod
    def _visible(principal: Principal) -> Callable[[Budget], bool] | None:
        if principal.tenant is None:
            return None  # admins, and everyone when no tokens are configured
        tenant = principal.tenant.name
        return lambda budget: budget.scope.tenant == (tenant,)

    def list_budgets(self, request: Request, principal: Principal) -> Response:
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            t = self._translator(request)
            return _error(503, t._("cannot read spend from the store: {error}; retry shortly").format(error=exc.detail))
        visible = self._visible(principal)
        return Response.json(200, {"budgets": [st.to_json() for _, st in sorted(statuses.items())
                                               if visible is None or visible(st.budget)]})

    def get_budget(self, request: Request, principal: Principal) -> Response:
        name = request.path[len("/v1/budgets/"):]
        visible = self._visible(principal)
        t = self._translator(request)
        if name not in self._service.budgets or (visible is not None and not visible(self._service.budgets[name])):
            # only the names this caller may see: another tenant's budget names are not its business
            known = ", ".join(sorted(n for n, b in self._service.budgets.items() if visible is None or visible(b)))
            known = known or t._("none configured")
            return _error(404, t._("no budget named {name} (known: {known})").format(name=repr(name), known=known))
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            return _error(503, t._("cannot read spend from the store: {error}; retry shortly").format(error=exc.detail))
        return Response.json(200, statuses[name].to_json())

    def advice(self, request: Request, principal: Principal) -> Response:
        t = self._translator(request)
        try:
            body: Any = loads_json(request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, t._("body must be a JSON object like {example}: {error}").format(
                example='{"model": "gpt-4o", "tenant": "acme"}', error=exc))
        if not isinstance(body, dict):
            return _error(400, t._("body must be a JSON object, got {type}").format(type=type(body).__name__))
        problems = [t._("unknown field {field} (known: {known})").format(field=repr(k), known=", ".join(ADVICE_FIELDS))
                    for k in body if k not in ADVICE_FIELDS]
        if not isinstance(body.get("model"), str) or not body.get("model"):
            problems.append(t._("'model' is required: the model the application means to call"))
        for key in ("tenant", "service", "provider"):
            if key in body and not isinstance(body[key], str):
                problems.append(t._("{field} must be a string ({meaning})").format(
                    field=repr(key), meaning=t._(ADVICE_FIELDS[key])))
        attrs = body.get("attributes", {})
        if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
            problems.append(t._("'attributes' must be an object of string values"))
        if problems:
            return _error(400, "; ".join(problems))
        try:
            tenant = principal.tenant.name if principal.tenant is not None else body.get("tenant", "")
            answer = self._service.advise(body["model"], tenant, body.get("service", ""),
                                          body.get("provider", ""), attrs, visible=self._visible(principal),
                                          translator=t)
        except StoreUnavailable as exc:
            return _error(503, t._("cannot read spend from the store: {error}; until it recovers, use the requested model")
                          .format(error=exc.detail))
        return Response.json(200, answer)
