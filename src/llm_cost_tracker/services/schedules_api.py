"""The embedded schedules API of ``run``: ``POST /v1/schedules`` and ``GET /v1/schedules/{id}``.

``POST`` takes a JSON task batch (docs/scheduler.md), checks it at once (400 with the line of the
problem, 422 when it is provably infeasible) and answers 202 with ``{"batch_id", "status": "queued"}``.
``scheduler_concurrency`` daemon threads solve the queued batches (at most :data:`MAX_QUEUED`
waiting; more gets 429) and store each answer in the ``schedules`` table through the API's own store
client. ``GET`` answers ``queued`` or ``running`` while the batch is in hand, then the stored
document: ``status`` (done, error, infeasible, cancelled), ``error`` and ``result`` (the schedule
and the Pareto front), exactly as the worker publishes it.

Inputs: what the batch leaves out comes from the service itself (:class:`TrackerInputs`): the catalog it
prices spans with (user price file, the caller's tenant prices and discounts), speeds measured from the
caller's stored spans, and the remainder of a budget named in ``"budget": {"name": ...}``. A missing
input is a 400 that says what is missing; a store that cannot be read for them is a 503. The 202
answer carries ``inputs``: where each price, speed and the cap came from.

Access: with bearer tokens configured every call needs one (401 otherwise); a tenant's token sees
only the batches it submitted (others answer 404) and plans for its own tenant (a batch naming
another ``tenant`` is 403); an admin token sees all and may name the tenant.

On stop: new batches get 503, queued ones are stored as ``cancelled`` (resubmit them), and running
ones get up to ``scheduler_shutdown_seconds`` to finish.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from llm_cost_tracker.access.guard import REFUSED_MESSAGE, AccessGuard, http_principal
from llm_cost_tracker.config import SchedulerConfig, Settings
from llm_cost_tracker.httpserver import HttpServer, Request, Response
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.scheduler.batch import TaskBatch
from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError
from llm_cost_tracker.scheduler.solve import Scheduler
from llm_cost_tracker.services.schedule_inputs import InputsUnavailable, TrackerInputs
from llm_cost_tracker.services.schedule_outcome import Outcome, ScheduleStore, sha256_hex
from llm_cost_tracker.services.schedule_solving import ScheduleMetrics, batch_tenant, parse, solve_parsed
from llm_cost_tracker.storage import client as store

__all__ = ["MAX_QUEUED", "PATH", "SchedulesApi"]

log = get_logger("schedules_api")
MAX_QUEUED = 64
PATH = "/v1/schedules"
Handler = Callable[[Request, "str | None", bool], Response]


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


class SchedulesApi:
    """Request handlers, the bounded solve threads and the store client of the embedded schedules API.

    Args:
        config: the scheduler section (``settings.scheduler``: the budget, concurrency and shutdown).
        guard: authenticates callers (everyone may call without one).
        registry: the service's Prometheus registry (schedule and engine metrics are added to it).
    """

    def __init__(self, config: SchedulerConfig, guard: AccessGuard | None, registry: CollectorRegistry,
                 client: Any, inputs: TrackerInputs) -> None:
        self._settings = config
        self._guard = guard
        self._registry = registry
        self._pending: dict[str, Outcome] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple[Outcome, TaskBatch] | None] = queue.Queue()
        self._accepting = False
        self._threads: list[threading.Thread] = []
        self._client = client
        self.metrics = ScheduleMetrics(registry)
        self.scheduler = Scheduler()
        self.store = ScheduleStore(client)
        self.inputs = inputs

    @classmethod
    def serve(cls, settings: Settings, http: HttpServer, guard: AccessGuard | None,
              registry: CollectorRegistry, catalog: Any, budgets: Any = None) -> SchedulesApi:
        """Open the store, start the solve threads and register the routes on ``http`` (not yet serving).

        Args:
            catalog: the price catalog holder the service prices spans with (``.current``).
            budgets: the service's budget service (None: named budgets are refused).
        """
        client = store.connect(settings.store)  # the schedules tables exist: the service migrated first
        inputs = TrackerInputs(settings.scheduler, catalog, store.connect(settings.store), budgets)
        api = cls(settings.scheduler, guard, registry, client, inputs)
        api._accepting = True
        for i in range(settings.scheduler_concurrency):
            thread = threading.Thread(target=api._work, name=f"schedules-{i}", daemon=True)
            thread.start()
            api._threads.append(thread)
        http.route("POST", PATH, api._authenticated(api.submit))
        http.route("GET", PATH + "/", api._authenticated(api.get), prefix=True)
        return api

    def _authenticated(self, handler: Handler) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            principal = http_principal(self._guard, request.headers)
            if principal is None:
                return _error(401, REFUSED_MESSAGE)
            tenant = principal.tenant.name if principal.tenant is not None else None
            return handler(request, tenant, tenant is None)

        return serve

    # --- handlers ------------------------------------------------------------------------------

    def submit(self, request: Request, tenant: str | None, admin: bool) -> Response:
        if not self._accepting:
            return _error(503, "the service is shutting down; submit the batch to another replica or retry")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "body must be a UTF-8 JSON task batch (docs/scheduler.md)")
        named = batch_tenant(text)
        if named is not None and not admin and named != tenant:
            return _error(403, "a tenant's token plans for its own tenant only; leave 'tenant' out of the batch")
        tenant = named or tenant
        batch_id = uuid.uuid4().hex
        try:
            batch = parse(text, "body", self.inputs.for_caller(tenant))
        except ParseError as exc:
            return _error(400, f"not a valid task batch: {exc}")
        except InfeasibleError as exc:
            return _error(422, f"infeasible: {exc}")
        except InputsUnavailable as exc:
            return _error(503, f"{exc}; retry shortly")
        base = Outcome(batch_id, sha256_hex(request.body), "api", "queued", name=batch.name, tenant=tenant or "")
        with self._lock:
            if len(self._pending) >= MAX_QUEUED + self._settings.scheduler_concurrency:
                return _error(429, f"{len(self._pending)} batches are in hand; retry when some are done")
            self._pending[batch_id] = base
        self._jobs.put((base, batch))
        return Response.json(202, {"batch_id": batch_id, "status": "queued", "name": batch.name,
                                   "location": f"{PATH}/{batch_id}", "inputs": batch.inputs})

    def get(self, request: Request, tenant: str | None, admin: bool) -> Response:
        batch_id = request.path[len(PATH) + 1:]
        if not batch_id or "/" in batch_id:
            return _error(404, f"expected {PATH}/<batch_id>")
        with self._lock:
            pending = self._pending.get(batch_id)
            running = batch_id in self._running
        if pending is not None:
            outcome: Outcome | None = replace(pending, status="running" if running else "queued")
        else:
            try:
                outcome = self.store.find(batch_id)
            except Exception as exc:
                return _error(503, f"cannot read the schedules table: {type(exc).__name__}: {exc}; retry shortly")
        if outcome is None or (not admin and outcome.tenant != tenant):
            return _error(404, f"no batch {batch_id!r}")
        doc = outcome.to_json()
        if outcome.status in ("queued", "running"):
            doc["solved_at"] = None
        return Response.json(200, doc)

    # --- solving -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            base, batch = job
            with self._lock:
                if base.batch_id not in self._pending:
                    continue  # cancelled at shutdown
                self._running.add(base.batch_id)
            self.metrics.in_progress.inc()
            try:
                outcome = solve_parsed(batch, self.scheduler, self._settings, base)
            except Exception as exc:  # an engine bug: answer it rather than leave the batch queued forever
                log.error("solve failed", batch_id=base.batch_id, error=f"{type(exc).__name__}: {exc}")
                outcome = replace(base, status="error", error=f"internal error: {type(exc).__name__}: {exc}",
                                  solved_at=datetime.now(UTC))
            finally:
                self.metrics.in_progress.dec()
            self._finish(outcome)

    def _finish(self, outcome: Outcome) -> None:
        """Store the answer, then forget the in-hand entry (so GET never sees neither)."""
        for attempt in range(5):
            try:
                self.store.save(outcome)
                break
            except Exception as exc:
                log.warning("storing a schedule failed", batch_id=outcome.batch_id, attempt=attempt + 1,
                            error=f"{type(exc).__name__}: {exc}")
                time.sleep(0.5 * 2**attempt)
        self.metrics.batches.labels("api", outcome.status).inc()
        with self._lock:
            self._pending.pop(outcome.batch_id, None)
            self._running.discard(outcome.batch_id)

    def stop(self) -> None:
        """Refuse new batches, store the queued ones as cancelled, give running ones the shutdown time."""
        self._accepting = False
        with self._lock:
            cancelled = [o for bid, o in self._pending.items() if bid not in self._running]
        for outcome in cancelled:
            self._finish(replace(outcome, status="cancelled", solved_at=datetime.now(UTC),
                                 error="the service stopped before this batch was solved; submit it again"))
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + self._settings.scheduler_shutdown_seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        unfinished = [t.name for t in self._threads if t.is_alive()]
        if unfinished:
            log.warning("schedules still solving at shutdown are abandoned", threads=unfinished)
        else:
            self._client.close()
            self.inputs.close()
        if cancelled:
            log.info("queued schedules cancelled at shutdown", batches=len(cancelled))

