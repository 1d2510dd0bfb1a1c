"""The ``scheduler`` worker: task batches from a Kafka topic -> solved -> result topic + ``schedules`` table.

Lifecycle (arq-like, docs/style.md section 5): ``start()`` opens the store (migrations), the Kafka
clients and the HTTP port and starts the loop in an event-loop thread; ``stop()`` stops taking new
batches, lets the solves in hand finish for up to ``scheduler_shutdown_seconds``, cancels the rest
(unpublished, uncommitted: they are redelivered), leaves the group and closes everything. In burst
mode the loop returns once every assigned partition is drained (``wait()``), which makes it testable.

Per fetched group of at most ``scheduler_concurrency`` messages: each is parsed, solved (one
:class:`~llm_cost_tracker.scheduler.solve.Scheduler`, one breaker per worker) and stored, its result
published (key: batch id) and acknowledged by the broker; only then are the offsets committed. A
redelivered batch (same id, same text) is answered from the stored row, not solved again; a
malformed one gets an ``error`` result naming the line, and the worker carries on.

The solve and store calls run in daemon threads, so a cancelled solve never holds the process open.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from llm_cost_tracker.budgets import BudgetService, load_budgets
from llm_cost_tracker.config import Settings
from llm_cost_tracker.frontend import load_catalog, status_server
from llm_cost_tracker.httpserver import HttpServer
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.queue.kafka_client import (
    LoopThread,
    client_options,
    compression_type,
    ensure_topics,
    start_producer,
)
from llm_cost_tracker.scheduler.solve import Scheduler
from llm_cost_tracker.services.schedule_inputs import InputsUnavailable, TrackerInputs
from llm_cost_tracker.services.schedule_outcome import STATUSES, Outcome, ScheduleStore, sha256_hex
from llm_cost_tracker.services.schedule_solving import (
    EngineMetrics,
    ScheduleMetrics,
    batch_tenant,
    parse,
    seed_for,
    solve_budget,
    solve_parsed,
    solve_text,
)
from llm_cost_tracker.storage import client as store
from llm_cost_tracker.storage.migrate import migrate

__all__ = ["STATUSES", "EngineMetrics", "Outcome", "ScheduleMetrics", "ScheduleStore", "SchedulerWorker",
           "batch_id_of", "parse", "run_in_daemon", "seed_for", "sha256_hex", "solve_budget", "solve_parsed",
           "solve_text"]

log = get_logger("scheduler_worker")
T = TypeVar("T")
MAX_BATCH_ID_CHARS = 200


def run_in_daemon(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in a daemon thread; its result arrives through an asyncio future on ``loop``.

    Unlike ``asyncio.to_thread`` (a non-daemon pool joined at exit), an abandoned call here never
    delays the process's exit past the shutdown timeout.
    """
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        value: Any
        try:
            value, ok = fn(*args), True
        except BaseException as exc:
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop is closed: the caller gave up on this call

    threading.Thread(target=run, name=f"scheduler-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    return future


def batch_id_of(message: Any) -> tuple[str, str]:
    """(batch id, problem): the record key, else ``topic-partition-offset`` (stable on redelivery)."""
    fallback = f"{message.topic}-{message.partition}-{message.offset}"
    if not message.key:
        return fallback, ""
    try:
        key = message.key.decode("utf-8")
    except UnicodeDecodeError:
        return fallback, "record key is not UTF-8; the batch id is its topic-partition-offset"
    if len(key) > MAX_BATCH_ID_CHARS or not key.isprintable():
        return fallback, f"record key is not a printable id of at most {MAX_BATCH_ID_CHARS} characters"
    return key, ""


def _with(base: Outcome, **changes: Any) -> Outcome:
    return replace(base, solved_at=datetime.now(UTC), **changes)


def tracker_inputs(settings: Settings) -> TrackerInputs:
    """The worker's plan inputs: the catalog, store and budgets the service of these settings uses."""
    catalog = load_catalog(settings.pricing, settings.store)
    budgets, options = load_budgets(settings.config_file)
    service = BudgetService(budgets, store.connect(settings.store), options=options) if budgets else None
    return TrackerInputs(settings.scheduler, catalog, store.connect(settings.store), service)


class SchedulerWorker:
    """Kafka task batches -> solved schedules on the results topic and in the ``schedules`` table (a
    :class:`~llm_cost_tracker.protocols.Service`; in burst mode :attr:`done` says when it drained).

    Args:
        settings: validated settings with ``kafka_bootstrap`` (``scheduler_*`` fields for the rest).
        burst: drain the assigned partitions, then return (see :meth:`wait`).
        serve_http: run the /metrics, /healthz, /readyz port on ``settings.http``.
        registry: the Prometheus registry (a fresh one by default).
    """

    def __init__(self, settings: Settings, burst: bool = False, serve_http: bool = True,
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.burst = burst
        self.serve_http = serve_http
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ScheduleMetrics(self.registry)
        self.scheduler = Scheduler()
        self.http_port = 0
        self.fetch_error = ""
        self.store_error = ""
        self.processed = 0
        self._stopping = threading.Event()
        self._heartbeat = time.monotonic()
        # start(): the store, the plan inputs, the event-loop thread with the Kafka clients, the loop, the port
        self._client: Any = None
        self.store: ScheduleStore | None = None
        self.inputs: TrackerInputs | None = None
        self._loop: LoopThread | None = None
        self._producer: Any = None
        self._consumer: Any = None
        self._main: Future[None] | None = None
        self.http: HttpServer | None = None

    def start(self) -> None:
        s = self.settings
        self._client = store.connect(s.store)
        applied = migrate(self._client, settings=s.store)
        if applied:
            log.info("schema migrated", versions=[m.version for m in applied])
        self.store = ScheduleStore(self._client)
        self.inputs = tracker_inputs(s)
        self._heartbeat = time.monotonic()
        self._loop = LoopThread("scheduler-worker")
        try:
            self._loop.call(self._start_kafka(), timeout=s.kafka_request_timeout_ms / 1000 + 30)
        except BaseException:
            self._loop.stop()
            self._client.close()
            raise
        self._main = self._loop.submit(self._run())
        if self.serve_http:
            self.http = status_server(s, self.registry, self.ready)
            self.http_port = self.http.port
            self.http.start()
        log.info("scheduler worker started", tasks=s.scheduler_tasks_topic, results=s.scheduler_results_topic,
                 group=s.scheduler_group_id, concurrency=s.scheduler_concurrency, burst=self.burst,
                 store=store.describe(s.store))

    async def _start_kafka(self) -> None:
        s = self.settings
        kafka = s.kafka
        created = await ensure_topics(kafka, [s.scheduler_tasks_topic, s.scheduler_results_topic])
        if created:
            log.info("created topics", topics=created, partitions=s.kafka_partitions)
        options = client_options(kafka)
        self._producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=s.kafka_idempotence,
                                          compression_type=compression_type(kafka), linger_ms=0)
        await start_producer(self._producer, kafka)
        solve_ms = int((s.scheduler_time_limit_seconds + 5) * 1000)
        self._consumer = AIOKafkaConsumer(
            s.scheduler_tasks_topic, **options, group_id=s.scheduler_group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms, fetch_max_wait_ms=200,
            max_poll_interval_ms=max(300_000, 2 * solve_ms + 60_000),
        )
        try:
            await self._consumer.start()
        except BaseException:
            await self._producer.stop()
            raise

    async def _run(self) -> None:
        """Fetch up to ``scheduler_concurrency`` batches, answer them all, commit; until stopped (or drained)."""
        s = self.settings
        consumer = self._consumer
        while not self._stopping.is_set():
            self._heartbeat = time.monotonic()
            try:
                fetched = await consumer.getmany(timeout_ms=300, max_records=s.scheduler_concurrency)
                self.fetch_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.fetch_error = f"{type(exc).__name__}: {exc}"
                log.warning("fetch failed; retrying", error=self.fetch_error[:300])
                await asyncio.sleep(1.0)
                continue
            messages = [m for batch in fetched.values() for m in batch]
            if not messages:
                if self.burst and await self._drained():
                    log.info("burst: every assigned partition is drained", processed=self.processed)
                    return
                continue
            await asyncio.gather(*(self._answer(m) for m in messages))
            await self._commit({tp: batch[-1].offset + 1 for tp, batch in fetched.items()})
            self.processed += len(messages)

    async def _commit(self, offsets: dict[Any, int]) -> None:
        """Acknowledge the answered batches (every result is already acknowledged by the broker)."""
        await self._consumer.commit(offsets)

    async def _drained(self) -> bool:
        assigned = self._consumer.assignment()
        if not assigned:
            return False
        ends = await self._consumer.end_offsets(list(assigned))
        for tp in assigned:
            if await self._consumer.position(tp) < ends[tp]:
                return False
        return True

    async def _answer(self, message: Any) -> None:
        """Solve (or find the stored answer of) one message, store it, publish it."""
        loop = asyncio.get_running_loop()
        batch_id, key_problem = batch_id_of(message)
        value: bytes = message.value or b""
        sha = sha256_hex(value)
        schedules = self.store
        assert schedules is not None  # the loop runs only after start() opened the store
        stored = await self._store_call(loop, schedules.find, batch_id, sha)
        if stored is not None:
            self.metrics.reused.inc()
            outcome = stored
            log.info("redelivered batch answered from the store", batch_id=batch_id, status=outcome.status)
        else:
            base = Outcome(batch_id, sha, "kafka", "error",
                           submitted_at=datetime.fromtimestamp(message.timestamp / 1000, UTC))
            if key_problem:
                log.warning(key_problem, batch_id=batch_id)
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                outcome = _with(base, error=f"batch {batch_id}: not UTF-8 text ({exc})")
            else:
                self.metrics.in_progress.inc()
                try:
                    outcome = await run_in_daemon(loop, self._solve, text, base)
                finally:
                    self.metrics.in_progress.dec()
            await self._store_call(loop, schedules.save, outcome)
            self.metrics.batches.labels("kafka", outcome.status).inc()
            log.info("batch answered", batch_id=batch_id, status=outcome.status,
                     error=outcome.error[:300] or None)
        await self._producer.send_and_wait(self.settings.scheduler_results_topic, outcome.message(),
                                           key=batch_id.encode(), headers=[("content-type", b"application/json")])
        self.metrics.published.inc()

    def _solve(self, text: str, base: Outcome) -> Outcome:
        """Parse with the tracker's inputs (the batch's ``tenant`` names whose prices apply) and solve."""
        tenant = batch_tenant(text)
        base = replace(base, tenant=tenant or "")
        for attempt in range(5):
            try:
                inputs = self.inputs.for_caller(tenant) if self.inputs is not None else None
                return solve_text(text, self.scheduler, self.settings.scheduler, base, inputs)
            except InputsUnavailable as exc:
                log.warning("plan inputs unavailable; retrying", batch_id=base.batch_id, error=str(exc)[:300])
                if attempt == 4 or self._stopping.wait(0.5 * 2**attempt):
                    return _with(base, status="error", error=f"{exc}; submit the batch again")
        raise AssertionError("unreachable")

    async def _store_call(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> T:
        """A store call in a daemon thread, retried until it works or the worker stops."""
        delay = 0.5
        while True:
            try:
                value = await run_in_daemon(loop, fn, *args)
                self.store_error = ""
                return value
            except Exception as exc:
                self.store_error = f"{type(exc).__name__}: {exc}"
                log.warning("store call failed; retrying", error=self.store_error[:300])
                if self._stopping.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loop ends (burst mode: drained); False on timeout. Re-raises a loop failure."""
        if self._main is None:
            raise RuntimeError("SchedulerWorker.wait() before start()")
        try:
            self._main.result(timeout)
        except TimeoutError:
            return False
        return True

    @property
    def done(self) -> bool:
        """Whether the loop has ended (burst mode: drained, or failed); False before start()."""
        return self._main is not None and self._main.done()

    def ready(self) -> tuple[bool, str]:
        """Ready while running, fetching works, the store answers and the loop is not stuck."""
        if self._stopping.is_set():
            return False, "shutting down"
        if self._main is None:
            return False, "starting"
        if self._main.done():
            return False, "worker loop ended"
        if self.fetch_error:
            return False, f"cannot fetch from Kafka: {self.fetch_error}"
        if self.store_error:
            return False, f"store calls are failing: {self.store_error}"
        stuck_after = self.settings.scheduler_time_limit_seconds + 60
        if time.monotonic() - self._heartbeat > stuck_after:
            return False, f"worker loop has not polled for over {stuck_after:.0f}s"
        return True, "ok"

    def reload(self) -> None:
        """SIGHUP: nothing is re-read yet (the :class:`~llm_cost_tracker.protocols.Service` lifecycle)."""

    def stop(self) -> int | None:
        """Stop taking batches; wait up to ``scheduler_shutdown_seconds`` for those in hand; cancel; close.

        Returns the exit code 1 when the worker loop had failed (logged), None otherwise.
        """
        if self._stopping.is_set():
            return None
        self._stopping.set()
        if self._main is None or self._loop is None:
            return None  # never started (start() closes what it opened when it fails)
        s = self.settings
        finished, failed = True, False
        try:
            self._main.result(s.scheduler_shutdown_seconds)
        except TimeoutError:
            finished = False
            self._main.cancel()  # cancels the task: no publish, no commit for the batches in hand
            log.warning("batches in hand not answered within the shutdown time; cancelled, they will be "
                        "redelivered", shutdown_seconds=s.scheduler_shutdown_seconds)
        except BaseException as exc:  # the loop failed earlier; closing is still due
            failed = True
            log.error("worker loop failed", error=f"{type(exc).__name__}: {exc}")
        try:
            self._loop.call(self._close_kafka(), timeout=15)
        except Exception as exc:
            log.warning("closing the Kafka clients failed", error=f"{type(exc).__name__}: {exc}")
        self._loop.stop()
        if self.http is not None:
            self.http.stop()
        if finished:
            self._client.close()  # else an abandoned store call may still hold it; exit closes it
            if self.inputs is not None:
                self.inputs.close()
        log.info("scheduler worker stopped", processed=self.processed, finished_in_hand=finished)
        return 1 if failed else None

    async def _close_kafka(self) -> None:
        try:
            await self._consumer.stop()  # leaves the group
        finally:
            await self._producer.stop()
