"""Wires source -> transforms -> queue -> batch writer -> ClickHouse, and runs their lifecycle.

Start order: store (migrations) -> sink loop -> HTTP -> gRPC. Stop order is the reverse of data
flow: stop accepting (health NOT_SERVING, in-flight Exports finish), close the queue, let the
writer drain and flush every accepted span, then close the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_cost_tracker.access.setup import apply_label_limits, build_guard, load_tokens, tls_files
from llm_cost_tracker.budgets import BudgetHook
from llm_cost_tracker.config import Settings
from llm_cost_tracker.httpserver import HttpServer
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.services.schedules_api import SchedulesApi
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_grpc import OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.storage import client as store
from llm_cost_tracker.storage.migrate import migrate
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import Catalog, Price
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.transforms.usage import ExtractUsage
from llm_cost_tracker.types import Transform

log = get_logger("pipeline")


def load_catalog(settings: Settings) -> Any:
    """The reloadable price catalog holder for ``settings`` (bundled prices plus the user's file)."""
    from llm_cost_tracker.pricing import ReloadingCatalog

    return ReloadingCatalog(overrides=Path(settings.pricing_file) if settings.pricing_file else None)


def default_transforms(catalog: Callable[[], Catalog], metrics: Metrics,
                       redact: Transform | None = None) -> list[Transform]:
    """detect -> usage -> price -> redact: the per-record stages every receiver runs.

    Redaction is last: the earlier stages read what they need, and nothing is published unredacted.
    Without ``redact`` the default policy applies (content dropped, secrets masked; docs/redaction.md).
    """

    def on_unpriced(provider: str, model: str) -> None:
        log.warning("model has no price; spans are stored unpriced", provider=provider, model=model)

    return [Detect(), ExtractUsage(), Price(catalog, on_unpriced), redact or Redact(metrics=metrics)]


@dataclass
class AllInOne:
    """The embedded service: receiver, in-process queue and ClickHouse writer in one process.

    Args:
        settings: validated settings.
        metrics: the process's metrics (a fresh registry by default).
        catalog: price catalog holder with ``.current`` and ``.reload()`` (loaded from settings by default).
    """

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    catalog: Any = None
    grpc_port: int = 0
    http_port: int = 0
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        s = self.settings
        redact = Redact.from_settings(s, self.metrics)  # a bad [redaction] policy stops start-up here
        if self.catalog is None:
            self.catalog = load_catalog(s)
        self.tokens = load_tokens(s)
        self._guard = build_guard(self.tokens)
        apply_label_limits(self.metrics.spend.folder, self.tokens.current)
        self._client = store.connect(s)
        applied = migrate(self._client, settings=s)
        if applied:
            log.info("schema migrated", versions=[m.version for m in applied])
        self._sink = ClickHouseSink(self._client)
        self.queue = MemoryQueue(s.queue_capacity, ack_when_stored=s.ack == "stored")
        self.budgets = BudgetHook.from_settings(s)  # None unless the config file has [[budgets]]
        if self.budgets is not None:
            self.queue = self.budgets.track(self.queue)  # accepted-but-unstored spend for budgets
        self.metrics.queue_capacity.set(s.queue_capacity)
        self.metrics.queue_depth.set_function(lambda: self.queue.depth)
        self.writer = BatchWriter(
            self.queue, self._sink, ParkingLot(Path(s.data_dir) / "parked"), is_retriable,
            BatchPolicy(s.batch_size, s.batch_age_seconds, retry_max_seconds=s.sink_retry_max_seconds),
            self.metrics,
        )
        self.writer.start()
        self.handler = TraceExportHandler(
            default_transforms(lambda: self.catalog.current, self.metrics, redact), self.queue,
            DecodeLimits(s.max_attributes_per_span, s.max_attribute_value_bytes, s.tenant_attribute,
                         s.max_spans_per_request, s.max_attributes_per_request, s.max_attribute_depth),
            self.metrics, guard=self._guard, ack_timeout=max(5.0, 3 * s.batch_age_seconds),
        )
        self.http = HttpServer(s.http, self.metrics.registry, self.ready, tls=tls_files(s))
        if self.budgets is not None:
            self.budgets.serve(self.http, self.metrics.registry, guard=self._guard, lang=s.lang)
        self.schedules = SchedulesApi.serve(s, self.http, self._guard, self.metrics.registry)  # /v1/schedules
        self.http_port = self.http.port
        self.grpc = OtlpGrpcServer(s.otlp_grpc, self.handler, s.max_message_bytes, s.grpc_workers,
                                   tls=tls_files(s))
        self.grpc_port = self.grpc.port
        self.grpc.start()
        self.http.start()  # after gRPC, so /readyz never answers 200 before Export is served
        log.info("service started", otlp_grpc=f"{s.otlp_grpc.rpartition(':')[0]}:{self.grpc_port}",
                 http=f"{s.http.rpartition(':')[0]}:{self.http_port}", store=store.describe(s))

    def ready(self) -> tuple[bool, str]:
        """Ready when accepting, the last write succeeded and the queue is below 90% full."""
        if not self.handler.accepting:
            return False, "shutting down"
        if not self.writer.healthy:
            return False, "writes to the store are failing"
        if self.queue.depth >= 0.9 * self.queue.capacity:
            return False, "queue nearly full"
        return True, "ok"

    def reload(self) -> None:
        """SIGHUP: reload the price catalog and the token table; on error keep what is in force."""
        for name, holder in (("price catalog", self.catalog), ("auth tokens", self.tokens)):
            try:
                holder.reload()
            except Exception as exc:
                log.error(f"{name} reload failed; keeping the one in force", error=str(exc))
            else:
                log.info(f"{name} reloaded")
        apply_label_limits(self.metrics.spend.folder, self.tokens.current)

    def stop(self) -> None:
        """Stop accepting, drain and flush every accepted span, close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        timeout = self.settings.shutdown_timeout_seconds
        log.info("shutting down", queued=self.queue.depth)
        self.handler.accepting = False
        self.grpc.stop(grace=min(5.0, timeout))
        self.queue.close()
        self.writer.give_up_after(timeout)
        if not self.writer.join(timeout + 5):
            log.error("writer did not finish draining in time", queued=self.queue.depth)
        self.schedules.stop()
        self.http.stop()
        self._client.close()
        log.info("stopped", rows_written=self.metrics.rows_written._value.get())
