"""Wires the front end -> in-process queue -> batch writer -> ClickHouse, and runs their lifecycle.

Start order: front end prepared (what can fail: policies, prices, tokens) -> store (migrations) ->
sink loop -> listeners bound -> gRPC serving -> HTTP serving. Stop order follows the data: stop
accepting (health NOT_SERVING, in-flight Exports finish), close the queue, let the writer drain and
flush every accepted span (or park what is queued behind a write that hangs), then close the store.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from llm_cost_tracker.budgets import BudgetHook
from llm_cost_tracker.config import Settings, config_sections
from llm_cost_tracker.forward import Forwarder, ForwardGate, build_forwarder
from llm_cost_tracker.frontend import FrontEnd, default_transforms, load_catalog
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.protocols import LocalQueue
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.services.schedules_api import SchedulesApi
from llm_cost_tracker.services.spend_api import SpendApi
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter, QueuedParking
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.identity import FirstArrivals
from llm_cost_tracker.sinks.parking import ParkingLot, default_fallbacks
from llm_cost_tracker.sql_http.service import SqlEndpoint
from llm_cost_tracker.storage import client as store
from llm_cost_tracker.storage.migrate import migrate

__all__ = ["EXIT_SPANS_LOST", "AllInOne", "default_transforms", "load_catalog"]
log = get_logger("pipeline")
EXIT_SPANS_LOST = 3
"""Exit code of a stop that could not keep every accepted span (the log has the count)."""


class AllInOne:
    """The embedded service: receiver, in-process queue and ClickHouse writer in one process (a
    :class:`~llm_cost_tracker.protocols.Service`).

    Everything that needs no I/O is built here from the settings' sections; what opens files, the store
    or ports is built by :meth:`start`, and is None until then.

    Args:
        settings: validated settings.
        metrics: the process's metrics (a fresh registry by default).
        catalog: price catalog holder with ``.current`` and ``.reload()`` (loaded from settings by default).
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None, catalog: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.catalog = catalog
        self.front = FrontEnd(settings, self.metrics, catalog)  # nothing loaded or bound before start()
        self._memory_queue = MemoryQueue.from_config(settings.queue)
        """The queue itself, without the budgets' wrapper that start() puts around it (stop() drains it directly)."""
        self.queue: LocalQueue = self._memory_queue
        self.writer_parking = ParkingLot(Path(settings.data_dir) / "parked", default_fallbacks())
        self.budgets: BudgetHook | None = None
        self.forwarder: Forwarder | None = None
        self.writer: BatchWriter | None = None
        self.sql: SqlEndpoint | None = None
        self.schedules: SchedulesApi | None = None
        self._client: Any = None
        self._stopped = threading.Event()
        self.grpc_port = 0
        self.otlp_http_port = 0
        self.http_port = 0
        self.sql_port = 0

    def start(self) -> None:
        s = self.settings
        self.front.prepare()
        self.catalog = self.front.catalog
        self._client = store.connect(s.store)
        applied = migrate(self._client, settings=s.store)
        if applied:
            log.info("schema migrated", versions=[m.version for m in applied])
        # config and run-time budgets, webhooks, anomalies
        self.budgets = BudgetHook.from_config(config_sections(s.config_file), s.store, s.privacy)
        self.queue = self.budgets.track(self.queue)  # accepted-but-unstored spend for budgets
        self.metrics.queue_capacity.set(s.queue_capacity)
        self.metrics.queue_depth.set_function(lambda: self.queue.depth)
        catalog = self.catalog
        self.forwarder = build_forwarder(s.forward, self.metrics.registry, lambda: catalog.current)  # None without it
        self.writer = BatchWriter(
            self.queue, ClickHouseSink(self._client), self.writer_parking, is_retriable,
            BatchPolicy.from_config(s.batch), self.metrics, first_arrivals=FirstArrivals(self._client),
            on_stored=self.forwarder.stored if self.forwarder is not None else None,  # forward what was stored
        )
        self.writer.start()
        self._report_parked()
        publisher: Any = self.queue
        if self.forwarder is not None:
            self.forwarder.start()
            publisher = ForwardGate(self.queue, self.forwarder.room, always=s.forward_all)
        self.front.bind(publisher, ack_timeout=max(s.ack_timeout_seconds, 3 * s.batch_age_seconds), ready=self.ready,
                        passthrough=self.forwarder.passthrough if self.forwarder is not None and s.forward_all
                        else None,
                        tables=self.forwarder is None)  # (the forwarder reads records: its spans take the stages)
        self.sql = SqlEndpoint.from_config(s.sql, s.store, s.access.tls(), self.front.tokens)  # port checked after OTLP's
        http = self.front.http
        assert http is not None
        self.budgets.serve(http, self.metrics.registry, guard=self.front.guard, lang=s.lang)
        self.schedules = SchedulesApi.serve(s, http, self.front.guard, self.metrics.registry, self.catalog,
                                            self.budgets.service)  # /v1/schedules
        SpendApi(self.sql.engine if self.sql else None, self._client, self.front.guard).register(http)  # /v1/spend
        if self.sql is not None:
            self.sql.start()  # read-only ClickHouse HTTP interface over the embedded store
            self.sql_port = self.sql.port
        self.front.start()
        self.grpc_port, self.http_port = self.front.grpc_port, self.front.http_port
        self.otlp_http_port = self.front.otlp_http_port
        log.info("service started", otlp_grpc=f"{s.otlp_grpc.rpartition(':')[0]}:{self.grpc_port}",
                 otlp_http=f"{s.otlp_http.rpartition(':')[0]}:{self.otlp_http_port}" if self.otlp_http_port else "off",
                 http=f"{s.http.rpartition(':')[0]}:{self.http_port}", store=store.describe(s.store))

    def ready(self) -> tuple[bool, str]:
        """Ready when accepting, the last write succeeded and the queue is below 90% full."""
        if not self.front.accepting or self.writer is None:
            return False, "shutting down" if self.writer is not None else "starting"
        if not self.writer.healthy:
            return False, "writes to the store are failing"
        if self.queue.depth >= 0.9 * self.queue.capacity or self.queue.bytes >= 0.9 * self.queue.max_bytes:
            return False, "queue nearly full"
        saturated = self.front.saturation()
        if saturated:
            return False, saturated
        return True, "ok"

    def reload(self) -> None:
        """SIGHUP: reload the price catalog and the token table; on error keep what is in force."""
        self.front.reload()

    def _park_queued(self, seconds: float) -> QueuedParking | None:
        """Park what is queued behind a stuck writer (:meth:`BatchWriter.park_queued`), waiting ``seconds`` at
        most: a parking directory that hangs as well (the same stalled disk) must not hang the stop, which
        then still ends with the exact count of what is neither written nor parked. None if it did not finish."""
        assert self.writer is not None
        writer, done = self.writer, []
        # straight from the queue: the budgets' wrapper would wait for the write gate the stuck batch holds
        parking = threading.Thread(target=lambda: done.append(writer.park_queued(
            "not written: the batch writer was stuck in a store write at shutdown", reader=self._memory_queue)),
            name="stop-parking", daemon=True)
        parking.start()
        parking.join(seconds)
        return done[0] if done else None

    def _report_parked(self) -> None:
        """Say at start that parked batches wait (they are in no table, rollup or budget until replayed)."""
        try:
            waiting = self.writer_parking.files()
        except OSError as exc:
            log.warning("cannot read the parking directory", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        if waiting:
            when = " (with this service stopped: the embedded store is one process's)" if store.is_embedded(
                self._client) else ""
            log.warning("parked batches wait to be replayed", files=len(waiting),
                        directories=sorted({str(p.parent) for p in waiting}), command="llm-cost-tracker parked replay"
                        + when)

    def stop(self) -> int:
        """Stop accepting, drain and flush every accepted span, close the store.

        The writer gets ``shutdown_timeout_seconds`` to write what is queued (then parks what the store
        still refuses) and 5 s more to finish. A writer still inside a store write by then (a hung insert)
        would leave every span queued behind it unwritten, so this thread parks those itself
        (:meth:`BatchWriter.park_queued`, committing each batch parked, as the writer does); the batch in
        the hung write stays the writer's and is lost unless that write returns before the count is taken.

        Returns the process exit code: 0 when every accepted span was written or parked, 3 when some
        could be neither (the log names the exact count: the queue's depth once the drain is over,
        which counts what is still queued and what the writer holds uncommitted).
        """
        if self._stopped.is_set():
            return 0
        self._stopped.set()
        timeout = self.settings.shutdown_timeout_seconds
        log.info("shutting down", queued=self.queue.depth)
        self.front.stop_accepting(grace=min(5.0, timeout))
        self.queue.close()
        forwarder = self.forwarder
        if self.writer is not None:
            self.writer.give_up_after(timeout)
        if forwarder is not None:
            forwarder.give_up_after(timeout)  # the writer's hand-over stops waiting by then
        if self.writer is not None and not self.writer.join(timeout + 5):
            queued = self.queue.depth
            drained = self._park_queued(timeout + 5)
            if drained is None:
                log.error("writer did not finish draining in time, and parking what was queued behind it did not "
                          "finish either (the parking directory hangs too): what is not parked is LOST",
                          spans_unwritten=queued, spans_not_stored=self.queue.depth)
            else:
                log.error("writer did not finish draining in time: it is stuck in a store write; the spans queued "
                          "behind it were parked, the batch it holds is LOST unless that write returns before exit",
                          spans_unwritten=queued, spans_parked=drained.parked, spans_not_parked=drained.unparked,
                          spans_in_hung_write=max(0, self.queue.depth - drained.unparked))
        lost = self.queue.depth  # accepted and neither written nor parked (lost batches are not committed)
        if forwarder is not None:
            forwarder.close(timeout)  # sends what is queued until the deadline; logs what it could not
        if self.schedules is not None:
            self.schedules.stop()
        if self.budgets is not None:
            self.budgets.stop()
        if self.sql is not None:
            self.sql.stop()
        self.front.stop_http()
        try:
            if self._client is not None:
                self._client.close()
        except Exception as exc:
            log.error("closing the store failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        if lost:
            log.error("stopped; ACCEPTED SPANS LOST: they could be neither written nor parked",
                      spans_lost=lost, rows_written=self.metrics.rows_written_total(),
                      parked_in=[str(d) for d in (self.writer_parking.directory, *self.writer_parking.fallbacks)])
            return EXIT_SPANS_LOST
        log.info("stopped", rows_written=self.metrics.rows_written_total())
        return 0
