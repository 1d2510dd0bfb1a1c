"""``GET /v1/check``: may this caller spend more? A fast answer for LLM gateways, from memory.

``GET /v1/check?user.id=alice&model=gpt-4o[&tenant=..&service=..&provider=..]`` answers
``{"allow": bool, "budgets": [...], "downgrade": [...], ...}``. Every parameter other than model,
tenant, service and provider is a span attribute (the ``each`` of a per-entity budget, or a scope
attribute). ``allow`` is false when a budget covering the call (for a per-entity budget: the
caller's entity's) is exceeded; ``downgrade`` lists the cheaper models the covering budgets' policies
advise, the one to use first. The state is the budget service's snapshot, kept fresh by the
background refresher (never older than twice ``refresh_seconds`` + 1 s): the store is not read per
request. A value of an attribute the store keeps redacted (mode ``hash``) is hashed the same way
before it is looked up, and a value holding a key is named by its SHA-256 as everywhere past the store
(:class:`budgets._entities.EntityNames`), so a gateway sends the key as it is, never echoed.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from llm_cost_tracker.access.tokens import Principal
from llm_cost_tracker.budgets._config import Budget
from llm_cost_tracker.budgets._status import iso, usd
from llm_cost_tracker.budgets.service import BudgetService, StoreUnavailable
from llm_cost_tracker.httpserver import Request, Response
from llm_cost_tracker.i18n import Translator

__all__ = ["CHECK_DIMENSIONS", "CheckApi"]

CHECK_DIMENSIONS = ("model", "tenant", "service", "provider")


class CheckApi:
    """The ``/v1/check`` handler.

    Args:
        service: the budget service (its :meth:`~BudgetService.current` snapshot answers).
        visible: a principal's budget filter (None: all), as the budgets API decides it.
        translator: a request's message language.
        normalize: (attribute, caller's value) -> the value as the store holds it (the ingest redaction).
        block: read the store when the snapshot is not fresh (False: answer from memory whatever its age,
            said by ``stale``; the handler then runs on the event loop).
    """

    def __init__(self, service: BudgetService, visible: Callable[[Principal], Callable[[Budget], bool] | None],
                 translator: Callable[[Request], Translator],
                 normalize: Callable[[str, str], str] | None = None, block: bool = True) -> None:
        self._service = service
        self._block = block
        self._visible = visible
        self._translator = translator
        self._normalize = normalize

    def check(self, request: Request, principal: Principal) -> Response:
        args = {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        model = args.pop("model", "")
        if not model:
            t = self._translator(request)
            return Response.json(400, {"error": t._("'model' is required: the model the application means to call")})
        tenant = principal.tenant.name if principal.tenant is not None else args.pop("tenant", "")
        args.pop("tenant", None)
        service, provider = args.pop("service", ""), args.pop("provider", "")
        normalize = self._normalize or self._service.normalize
        attributes = {k: normalize(k, v) for k, v in args.items()}
        try:
            snap = self._service.current(block=self._block)
        except StoreUnavailable as exc:
            t = self._translator(request)
            return Response.json(503, {"error": t._("cannot read spend from the store: {error}; until it recovers, "
                                                    "use the requested model").format(error=exc.detail)})
        visible = self._visible(principal)
        covering = [st for st in snap.covering(tenant, service, provider, model, attributes, self._service.names)
                    if visible is None or visible(st.budget)]
        budgets: list[dict[str, object]] = []
        deepest, advised = 0, list[str]()
        for st in sorted(covering, key=lambda s: (-s.spent_ratio, s.budget.name)):
            b = st.budget
            policy = b.downgrade.get(model, ())
            steps = min(st.downgrade_steps(), len(policy)) if policy else 0
            entry: dict[str, object] = {"name": b.name, "status": st.status, "spent_usd": usd(st.spent_pusd),
                                        "limit_usd": usd(b.limit_pusd), "spent_ratio": round(st.spent_ratio, 6),
                                        "projected_usd": usd(st.projected_pusd), "period_end": iso(st.period_end_ns)}
            if b.per_entity:
                entry["entity"] = st.entity
            budgets.append(entry)
            if steps > deepest:
                deepest, advised = steps, list(policy[steps - 1:])
        for table in snap.entities.values():  # an entity the budget does not track (new, or folded)
            b, each = table.budget, table.budget.scope.each
            value = {"tenant": tenant, "service": service, "provider": provider, "model": model}.get(each) \
                or attributes.get(each, "")
            value = self._service.names(value) if value else ""
            if (value and value not in table.entities and (visible is None or visible(b))
                    and b.scope.matches(tenant, service, provider, model, attributes)):
                budgets.append({"name": b.name, "entity": value, "status": "untracked",
                                "limit_usd": usd(b.limit_pusd), "folded": len(table.entities) >= b.max_entities})
        allow = not any(st.status == "exceeded" for st in covering)
        stale = (self._service.clock() - snap.as_of_ns) / 1e9 > 2 * self._service.options.refresh_seconds + 1
        return Response.json(200, {"allow": allow, "model": model, "budgets": budgets, "downgrade": advised,
                                   "as_of": iso(snap.as_of_ns), "stale": stale})
