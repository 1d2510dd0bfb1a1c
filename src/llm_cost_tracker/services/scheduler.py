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
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric

from llm_cost_tracker.config import Settings
from llm_cost_tracker.log import get_logger

log = get_logger("scheduler_worker")
T = TypeVar("T")
MAX_BATCH_ID_CHARS = 200
STATUSES = ("done", "error", "infeasible", "cancelled")


class ScheduleMetrics:
    """Counters of the worker and of the schedules API, on ``registry`` (plus the engine's, bridged)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter("llm_cost_schedule_batches_total",
                               "Task batches answered, by source (kafka, api) and status "
                               "(done, error, infeasible, cancelled).", ["source", "status"], registry=registry)
        self.reused = Counter("llm_cost_schedule_redelivered_total",
                              "Redelivered batches answered from the stored result without solving again.",
                              registry=registry)
        self.published = Counter("llm_cost_schedule_results_published_total",
                                 "Results acknowledged by the broker on the results topic.", registry=registry)
        self.in_progress = Gauge("llm_cost_schedule_in_progress", "Batches being solved now.", registry=registry)
        registry.register(EngineMetrics())


class EngineMetrics:
    """Collector re-exporting the engine's metrics (``llm_cost_scheduler_*`` in the default registry).

    ``scheduler/metrics.py`` registers breaker state, fallbacks, solves and solve time in
    prometheus_client's default registry; the service's /metrics serves its own registry, so this
    bridge adds those families to it.
    """

    def collect(self) -> Iterator[Metric]:
        import llm_cost_tracker.scheduler.metrics  # noqa: F401 - registers the families

        for family in REGISTRY.collect():
            if family.name.startswith("llm_cost_scheduler_"):
                yield family

    def describe(self) -> list[Metric]:
        return []  # collected lazily: no name clash checks against the engine's module-level metrics


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one batch: what is published, stored and returned by ``GET /v1/schedules/{id}``."""

    batch_id: str
    input_sha256: str
    source: str
    status: str
    name: str = ""
    error: str = ""
    result: dict[str, Any] | None = None
    tenant: str = ""
    submitted_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    solved_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "status": self.status, "name": self.name,
                "error": self.error or None, "result": self.result, "source": self.source,
                "submitted_at": _iso(self.submitted_at), "solved_at": _iso(self.solved_at)}

    def message(self) -> bytes:
        """The value published on the results topic (JSON, key = batch id)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()


def _iso(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seed_for(batch_id: str) -> int:
    """A seed from the batch id, so a batch solved twice (redelivery) gives the same schedule."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:4], "big")


def solve_budget(settings: Settings, batch_id: str) -> Any:
    from llm_cost_tracker.scheduler.solve import SolveSettings

    return SolveSettings(max_schedules=settings.scheduler_max_schedules,
                         time_limit=settings.scheduler_time_limit_seconds, seed=seed_for(batch_id))


def parse(text: str, source: str) -> Any:
    """Parse a task batch (``ParseError``/``InfeasibleError`` propagate; priced from the bundled catalog)."""
    from llm_cost_tracker.scheduler.batch import check_budget, parse_batch

    batch = parse_batch(text, source=source)
    check_budget(batch)
    return batch


def solve_parsed(batch: Any, scheduler: Any, settings: Settings, base: Outcome) -> Outcome:
    """Solve a parsed batch through ``scheduler`` (breaker + greedy fallback) into an Outcome."""
    from llm_cost_tracker.scheduler.errors import InfeasibleError
    from llm_cost_tracker.scheduler.report import to_json

    try:
        result = scheduler.solve_batch(batch, solve_budget(settings, base.batch_id))
    except InfeasibleError as exc:
        return _with(base, status="infeasible", name=batch.name, error=f"infeasible: {exc}")
    if not result.success or result.schedule is None:
        return _with(base, status="infeasible", name=batch.name, error=f"infeasible: {result.message}")
    return _with(base, status="done", name=batch.name, result=to_json(batch.problem, result))


def solve_text(text: str, scheduler: Any, settings: Settings, base: Outcome) -> Outcome:
    """Parse and solve; a malformed batch gives an ``error`` outcome naming its line."""
    from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError

    try:
        batch = parse(text, f"batch {base.batch_id}")
    except ParseError as exc:
        return _with(base, status="error", error=str(exc))
    except InfeasibleError as exc:
        return _with(base, status="infeasible", error=f"infeasible: {exc}")
    return solve_parsed(batch, scheduler, settings, base)


def _with(base: Outcome, **changes: Any) -> Outcome:
    from dataclasses import replace

    return replace(base, solved_at=datetime.now(UTC), **changes)


_COLUMNS = ["batch_id", "input_sha256", "name", "source", "tenant", "status", "error", "result",
            "makespan_seconds", "cost_usd", "fallback", "schedules_evaluated", "solve_seconds",
            "submitted_at", "solved_at"]


class ScheduleStore:
    """The ``schedules`` table through one clickhouse-connect client (calls serialized by a lock)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def save(self, outcome: Outcome) -> None:
        """Insert the row; a repeat of the same (batch id, input) is a no-op (deduplication token)."""
        r = outcome.result or {}
        schedule = r.get("schedule") or {}
        row = [outcome.batch_id, outcome.input_sha256, outcome.name, outcome.source, outcome.tenant,
               outcome.status, outcome.error, json.dumps(r, sort_keys=True) if outcome.result else "",
               float(r.get("makespan_seconds") or 0.0), float(schedule.get("cost_usd") or 0.0),
               r.get("fallback") or "", int(r.get("schedules_evaluated") or 0), float(r.get("seconds") or 0.0),
               _naive(outcome.submitted_at), _naive(outcome.solved_at)]
        token = f"{outcome.batch_id}/{outcome.input_sha256}/{outcome.status}"
        with self._lock:
            self._client.insert("schedules", [row], column_names=_COLUMNS,
                                settings={"insert_deduplicate": 1, "insert_deduplication_token": token})

    def find(self, batch_id: str, input_sha256: str | None = None) -> Outcome | None:
        """The stored outcome of ``batch_id`` (only if its input matches ``input_sha256``, when given)."""
        query = ("SELECT batch_id, input_sha256, source, status, name, error, result, tenant, submitted_at, "
                 "solved_at FROM schedules FINAL WHERE batch_id = {id:String}")
        params: dict[str, Any] = {"id": batch_id}
        if input_sha256 is not None:
            query += " AND input_sha256 = {sha:String}"
            params["sha"] = input_sha256
        with self._lock:
            rows = self._client.query(query + " LIMIT 1", parameters=params).result_rows
        if not rows:
            return None
        bid, sha, source, status, name, error, result, tenant, submitted, solved = rows[0]
        return Outcome(bid, sha, source, status, name=name, error=error,
                       result=json.loads(result) if result else None, tenant=tenant,
                       submitted_at=_aware(submitted), solved_at=_aware(solved))


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


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


@dataclass
class SchedulerWorker:
    """Kafka task batches -> solved schedules on the results topic and in the ``schedules`` table.

    Args:
        settings: validated settings with ``kafka_bootstrap`` (``scheduler_*`` fields for the rest).
        burst: drain the assigned partitions, then return (see :meth:`wait`).
        serve_http: run the /metrics, /healthz, /readyz port on ``settings.http``.
        registry: the Prometheus registry (a fresh one by default).
    """

    settings: Settings
    burst: bool = False
    serve_http: bool = True
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    http_port: int = 0

    def start(self) -> None:
        from llm_cost_tracker.queue.kafka_client import LoopThread
        from llm_cost_tracker.scheduler.solve import Scheduler
        from llm_cost_tracker.storage import client as store
        from llm_cost_tracker.storage.migrate import migrate

        s = self.settings
        self.metrics = ScheduleMetrics(self.registry)
        self.scheduler = Scheduler()
        self._client = store.connect(s)
        applied = migrate(self._client, settings=s)
        if applied:
            log.info("schema migrated", versions=[m.version for m in applied])
        self.store = ScheduleStore(self._client)
        self._stopping = threading.Event()
        self._heartbeat = time.monotonic()
        self.fetch_error = ""
        self.store_error = ""
        self.processed = 0
        self._loop = LoopThread("scheduler-worker")
        try:
            self._loop.call(self._start_kafka(), timeout=s.kafka_request_timeout_ms / 1000 + 30)
        except BaseException:
            self._loop.stop()
            self._client.close()
            raise
        self._main = self._loop.submit(self._run())
        if self.serve_http:
            from llm_cost_tracker.access.setup import build_guard, guard_metrics, load_tokens, tls_files
            from llm_cost_tracker.httpserver import HttpLimits, HttpServer

            self.http = HttpServer(s.http, self.registry, self.ready, tls=tls_files(s),
                                   limits=HttpLimits.from_settings(s))
            guard_metrics(self.http, self.registry, build_guard(load_tokens(s), s))
            self.http_port = self.http.port
            self.http.start()
        log.info("scheduler worker started", tasks=s.scheduler_tasks_topic, results=s.scheduler_results_topic,
                 group=s.scheduler_group_id, concurrency=s.scheduler_concurrency, burst=self.burst,
                 store=store.describe(s))

    async def _start_kafka(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        from llm_cost_tracker.queue.kafka_client import (
            client_options,
            compression_type,
            ensure_topics,
            start_producer,
        )

        s = self.settings
        created = await ensure_topics(s, [s.scheduler_tasks_topic, s.scheduler_results_topic])
        if created:
            log.info("created topics", topics=created, partitions=s.kafka_partitions)
        options = client_options(s)
        self._producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=s.kafka_idempotence,
                                          compression_type=compression_type(s), linger_ms=0)
        await start_producer(self._producer, s)
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
        stored = await self._store_call(loop, self.store.find, batch_id, sha)
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
                    outcome = await run_in_daemon(loop, solve_text, text, self.scheduler, self.settings, base)
                finally:
                    self.metrics.in_progress.dec()
            await self._store_call(loop, self.store.save, outcome)
            self.metrics.batches.labels("kafka", outcome.status).inc()
            log.info("batch answered", batch_id=batch_id, status=outcome.status,
                     error=outcome.error[:300] or None)
        await self._producer.send_and_wait(self.settings.scheduler_results_topic, outcome.message(),
                                           key=batch_id.encode(), headers=[("content-type", b"application/json")])
        self.metrics.published.inc()

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
        try:
            self._main.result(timeout)
        except TimeoutError:
            return False
        return True

    @property
    def done(self) -> bool:
        return self._main.done()

    def ready(self) -> tuple[bool, str]:
        """Ready while running, fetching works, the store answers and the loop is not stuck."""
        if self._stopping.is_set():
            return False, "shutting down"
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

    def stop(self) -> None:
        """Stop taking batches; wait up to ``scheduler_shutdown_seconds`` for those in hand; cancel; close."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        s = self.settings
        finished = True
        try:
            self._main.result(s.scheduler_shutdown_seconds)
        except TimeoutError:
            finished = False
            self._main.cancel()  # cancels the task: no publish, no commit for the batches in hand
            log.warning("batches in hand not answered within the shutdown time; cancelled, they will be "
                        "redelivered", shutdown_seconds=s.scheduler_shutdown_seconds)
        except BaseException as exc:  # the loop failed earlier; closing is still due
            log.error("worker loop failed", error=f"{type(exc).__name__}: {exc}")
        try:
            self._loop.call(self._close_kafka(), timeout=15)
        except Exception as exc:
            log.warning("closing the Kafka clients failed", error=f"{type(exc).__name__}: {exc}")
        self._loop.stop()
        if self.serve_http:
            self.http.stop()
        if finished:
            self._client.close()  # else an abandoned store call may still hold it; exit closes it
        log.info("scheduler worker stopped", processed=self.processed, finished_in_hand=finished)

    async def _close_kafka(self) -> None:
        try:
            await self._consumer.stop()  # leaves the group
        finally:
            await self._producer.stop()
