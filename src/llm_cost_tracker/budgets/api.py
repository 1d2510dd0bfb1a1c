"""HTTP routes of the budgets: ``GET /v1/budgets``, ``GET /v1/budgets/{name}``, ``POST /v1/advice``.

Every answer is JSON; errors are ``{"error": "<what is wrong and how to fix it>"}`` with 400 (bad
request), 404 (unknown budget) or 503 (the store cannot be read right now; retry).
"""

from __future__ import annotations

import json
from typing import Any

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
    """

    def __init__(self, service: BudgetService) -> None:
        self._service = service

    def register(self, http: HttpServer) -> None:
        http.route("GET", "/v1/budgets", self.list_budgets)
        http.route("GET", "/v1/budgets/", self.get_budget, prefix=True)
        http.route("POST", "/v1/advice", self.advice)

    def list_budgets(self, _request: Request) -> Response:
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; retry shortly")
        return Response.json(200, {"budgets": [st.to_json() for _, st in sorted(statuses.items())]})

    def get_budget(self, request: Request) -> Response:
        name = request.path[len("/v1/budgets/"):]
        if name not in self._service.budgets:
            known = ", ".join(sorted(self._service.budgets)) or "none configured"
            return _error(404, f"no budget named {name!r} (known: {known})")
        try:
            statuses = self._service.statuses()
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; retry shortly")
        return Response.json(200, statuses[name].to_json())

    def advice(self, request: Request) -> Response:
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
            answer = self._service.advise(body["model"], body.get("tenant", ""), body.get("service", ""),
                                          body.get("provider", ""), attrs)
        except StoreUnavailable as exc:
            return _error(503, f"{exc}; until it recovers, use the requested model")
        return Response.json(200, answer)
