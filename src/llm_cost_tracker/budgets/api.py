"""HTTP routes of the budgets: ``GET /v1/budgets`` (paged, filterable, entities included),
``GET|PUT|DELETE /v1/budgets/{name}``, ``POST /v1/advice`` and ``GET /v1/check`` (see :mod:`budgets.check`).

Every answer is JSON; errors are ``{"error": "<what is wrong and how to fix it>"}`` with 400 (bad
request), 401 (no or unknown bearer token, when tokens are configured), 404 (unknown budget) or 503
(the store cannot be read right now; retry).

Access: when the service has bearer tokens (``[auth]``), every call needs one. A tenant's token sees
only the budgets scoped to exactly that tenant (of a budget per tenant, ``each = "tenant"``, its own
entity only), and its advice considers only those; an admin token sees all. A budget a caller may not
see answers 404, like one that does not exist. ``PUT``/``DELETE`` need an admin token (403 otherwise);
without tokens configured everyone is admin, as everywhere else.

Language: ``error`` messages and advice ``reason`` follow the request's ``Accept-Language`` (en, es,
fr, de, ja, zh), else the service's language (``lang`` setting, ``LCT_LANG`` or the environment's
locale); every key and enum value stays English (docs/localization.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from llm_cost_tracker.access.guard import AccessGuard, http_principal
from llm_cost_tracker.access.tokens import Principal
from llm_cost_tracker.budgets._config import Budget, BudgetConfigError, parse_budget
from llm_cost_tracker.budgets._monitor import BudgetMonitor
from llm_cost_tracker.budgets._status import BudgetStatus, EntityStatuses, Snapshot
from llm_cost_tracker.budgets.check import CheckApi
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.httpserver import HttpServer, Request, Response, loads_json
from llm_cost_tracker.i18n import N_, Translator, negotiate, translator

LIST_PARAMS = ("name", "entity", "status", "limit", "offset")
MAX_PAGE = 1000
ADVICE_FIELDS = {"model": N_("a model name"), "tenant": N_("a tenant"), "service": N_("a service name"),
                 "provider": N_("a provider name"), "attributes": N_("a table of span attribute = value")}


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


def _store_refused(t: Translator, name: str, exc: Exception) -> Response:
    """The answer to a PUT or DELETE the budget service did not carry out: 409 for a budget of the config
    file, 503 when the store failed."""
    if isinstance(exc, PermissionError):
        return _error(409, t._("budget {name} is declared in the config file: change it there").format(
            name=repr(name)))
    return _error(503, t._("cannot store the budget: {error}; retry shortly").format(
        error=f"{type(exc).__name__}: {str(exc)[:200]}"))


class BudgetsApi:
    """Request handlers over a :class:`BudgetService`.

    Args:
        service: the budget service.
        guard: authenticates callers (everyone sees everything without one).
        lang: language of messages when a request has no usable ``Accept-Language`` (empty:
            ``LCT_LANG``, else the environment's locale).
        monitor: the background monitor, whose anomaly scores ``GET /v1/anomalies`` lists.
    """

    def __init__(self, service: BudgetService, guard: AccessGuard | None = None, lang: str = "",
                 monitor: BudgetMonitor | None = None) -> None:
        self._service = service
        self._monitor = monitor
        self._guard = guard
        self._default = translator(lang or None)

    def _translator(self, request: Request) -> Translator:
        return negotiate(request.headers.get("accept-language", ""), self._default)

    def register(self, http: HttpServer) -> None:
        http.route("GET", "/v1/budgets", self._authenticated(self.list_budgets))
        http.route("GET", "/v1/budgets/", self._authenticated(self.get_budget), prefix=True)
        http.route("PUT", "/v1/budgets/", self._authenticated(self.put_budget), prefix=True)
        http.route("DELETE", "/v1/budgets/", self._authenticated(self.delete_budget), prefix=True)
        http.route("POST", "/v1/advice", self._authenticated(self.advice))
        check = CheckApi(self._service, self._visible, self._translator, block=not self._service.answers_from_memory)
        # with a background refresh the check reads memory only: answered on the event loop (no thread hop)
        inline = self._service.answers_from_memory
        http.route("GET", "/v1/check", self._authenticated(check.check), inline=inline)
        http.route("GET", "/v1/anomalies", self._authenticated(self.anomalies))

    def anomalies(self, request: Request, principal: Principal) -> Response:
        """The latest anomaly scores per (tenant, service, model), highest first; a tenant sees its own."""
        found = self._monitor.anomalies if self._monitor is not None else []
        if principal.tenant is not None:
            found = [a for a in found if a.series[0] == principal.tenant.name]
        args = self._args(request)
        if args.get("anomalous") in ("1", "true"):
            found = [a for a in found if a.anomalous]
        return Response.json(200, {"anomalies": [a.to_json() for a in found]})

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
        return lambda budget: budget.scope.tenant == (tenant,) or budget.scope.each == "tenant"

    @staticmethod
    def _entity_visible(principal: Principal, table: EntityStatuses, entity: str) -> bool:
        """A tenant sees every entity of a budget scoped to it, and of a budget per tenant its own."""
        if principal.tenant is None or table.budget.scope.tenant == (principal.tenant.name,):
            return True
        return table.budget.scope.each == "tenant" and entity == principal.tenant.name

    def _snapshot(self, request: Request) -> Snapshot | Response:
        try:
            return self._service.snapshot()
        except StoreUnavailable as exc:
            t = self._translator(request)
            return _error(503, t._("cannot read spend from the store: {error}; retry shortly").format(error=exc.detail))

    def _page(self, request: Request, rows: list[BudgetStatus], args: dict[str, str]) -> Response | tuple[
            list[dict[str, Any]], dict[str, Any]]:
        t = self._translator(request)
        try:
            limit = int(args.get("limit", str(MAX_PAGE)))
            offset = int(args.get("offset", "0"))
            if not 1 <= limit <= MAX_PAGE or offset < 0:
                raise ValueError
        except ValueError:
            return _error(400, t._("limit must be 1-{max} and offset >= 0").format(max=MAX_PAGE))
        if args.get("status"):
            rows = [r for r in rows if r.status == args["status"]]
        if args.get("entity"):
            rows = [r for r in rows if args["entity"] in r.entity]
        page = rows[offset:offset + limit]
        more = offset + limit < len(rows)
        return [r.to_json() for r in page], {"total": len(rows), "offset": offset, "limit": limit,
                                             "next_offset": offset + limit if more else None}

    @staticmethod
    def _args(request: Request) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}

    def list_budgets(self, request: Request, principal: Principal) -> Response:
        """Every visible budget's status, then every visible entity's (biggest spenders first), paged."""
        args = self._args(request)
        unknown = sorted(set(args) - set(LIST_PARAMS))
        if unknown:
            t = self._translator(request)
            return _error(400, t._("unknown parameters {names} (known: {known})").format(
                names=", ".join(unknown), known=", ".join(LIST_PARAMS)))
        snap = self._snapshot(request)
        if isinstance(snap, Response):
            return snap
        visible = self._visible(principal)
        name = args.get("name")
        rows = [st for n, st in sorted(snap.statuses.items())
                if (visible is None or visible(st.budget)) and (not name or n == name)]
        tables = [tb for n, tb in sorted(snap.entities.items())
                  if (visible is None or visible(tb.budget)) and (not name or n == name)]
        for table in tables:
            rows += sorted((st for e, st in table.entities.items() if self._entity_visible(principal, table, e)),
                           key=lambda st: (-st.spent_pusd, st.entity))
        page = self._page(request, rows, args)
        if isinstance(page, Response):
            return page
        budgets, paging = page
        summary = [self._entity_summary(tb, principal) for tb in tables]
        return Response.json(200, {"budgets": budgets, **paging, "entity_budgets": summary})

    def _entity_summary(self, table: EntityStatuses, principal: Principal) -> dict[str, Any]:
        """A per-entity budget: its attribute, how many entities are tracked and folded, and ``other``."""
        out: dict[str, Any] = {"name": table.budget.name, "each": table.budget.scope.each,
                               "max_entities": table.budget.max_entities}
        if principal.tenant is None or table.budget.scope.tenant == (principal.tenant.name,):
            out.update(tracked=len(table.entities), folded=table.folded, other=table.other.to_json())
        return out

    def get_budget(self, request: Request, principal: Principal) -> Response:
        name = request.path[len("/v1/budgets/"):]
        visible = self._visible(principal)
        t = self._translator(request)
        if name not in self._service.budgets or (visible is not None and not visible(self._service.budgets[name])):
            # only the names this caller may see: another tenant's budget names are not its business
            known = ", ".join(sorted(n for n, b in self._service.budgets.items() if visible is None or visible(b)))
            known = known or t._("none configured")
            return _error(404, t._("no budget named {name} (known: {known})").format(name=repr(name), known=known))
        snap = self._snapshot(request)
        if isinstance(snap, Response):
            return snap
        if name in snap.statuses:
            return Response.json(200, snap.statuses[name].to_json())
        table = snap.entities[name]
        args = self._args(request)
        rows = sorted((st for e, st in table.entities.items() if self._entity_visible(principal, table, e)),
                      key=lambda st: (-st.spent_pusd, st.entity))
        page = self._page(request, rows, args)
        if isinstance(page, Response):
            return page
        entities, paging = page
        return Response.json(200, {**self._entity_summary(table, principal), "entities": entities, **paging})

    def _admin(self, request: Request, principal: Principal) -> Response | None:
        """403 unless an admin token (or no tokens configured: then every caller is admin) sent the request."""
        if principal.tenant is not None or not (principal.admin or self._guard is None
                                                  or self._guard.authenticate([]) is not None):
            t = self._translator(request)
            return _error(403, t._("managing budgets needs an admin token"))
        return None

    def put_budget(self, request: Request, principal: Principal) -> Response:
        """Create or replace a budget (the body is a ``[[budgets]]`` table as JSON); persisted."""
        refused = self._admin(request, principal)
        if refused is not None:
            return refused
        t = self._translator(request)
        name = request.path[len("/v1/budgets/"):]
        try:
            body: Any = loads_json(request.body or b"")
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, t._("body must be a JSON object like {example}: {error}").format(
                example='{"limit_usd": "0.001", "period": "day", "scope": {"each": "user.id"}}', error=exc))
        if not isinstance(body, dict):
            return _error(400, t._("body must be a JSON object, got {type}").format(type=type(body).__name__))
        try:
            budget = parse_budget(body, name)
        except BudgetConfigError as exc:
            return _error(400, "; ".join(exc.problems))
        try:
            created = self._service.put_budget(budget, body)
        except Exception as exc:
            return _store_refused(t, name, exc)
        return Response.json(201 if created else 200, {"name": name, "created": created, "source": "api"})

    def delete_budget(self, request: Request, principal: Principal) -> Response:
        refused = self._admin(request, principal)
        if refused is not None:
            return refused
        t = self._translator(request)
        name = request.path[len("/v1/budgets/"):]
        try:
            deleted = self._service.delete_budget(name)
        except Exception as exc:
            return _store_refused(t, name, exc)
        if not deleted:
            return _error(404, t._("no budget named {name} (known: {known})").format(
                name=repr(name), known=", ".join(sorted(self._service.budgets)) or t._("none configured")))
        return Response.json(200, {"name": name, "deleted": True})

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
            stored = {k: self._service.normalize(k, v) for k, v in attrs.items()}  # as ingest redacts them
            answer = self._service.advise(body["model"], tenant, body.get("service", ""), body.get("provider", ""),
                                          stored, visible=self._visible(principal), translator=t)
        except StoreUnavailable as exc:
            return _error(503, t._("cannot read spend from the store: {error}; until it recovers, use the requested model")
                          .format(error=exc.detail))
        return Response.json(200, answer)
