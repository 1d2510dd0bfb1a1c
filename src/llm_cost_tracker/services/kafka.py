"""The Kafka deployment's processes: ``receiver`` (OTLP -> topic), ``consumer`` (topic -> ClickHouse),
and both in one process for ``run --kafka-bootstrap``.

Lifecycle (arq-like): ``start()`` builds and starts every part, ``ready()`` answers /readyz,
``stop()`` stops taking new work, finishes what is in hand within the shutdown timeout, and closes.
The receiver stops accepting Exports, then waits for the broker to acknowledge what it accepted; the
consumer stops taking batches, lets the writer finish (insert + commit) the batch in hand, then leaves
the group: anything not committed is redelivered to another member and deduplicated there.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from llm_cost_tracker.access.setup import apply_label_limits, load_tokens
from llm_cost_tracker.config import Settings
from llm_cost_tracker.forward import Forwarder, ForwardGate, build_forwarder
from llm_cost_tracker.frontend import FrontEnd, status_server
from llm_cost_tracker.httpserver import HttpServer
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.kafka import KafkaPublisher
from llm_cost_tracker.queue.kafka_client import LoopThread, ensure_topics
from llm_cost_tracker.queue.kafka_metrics import KafkaMetrics
from llm_cost_tracker.queue.kafka_reader import KafkaBatchReader
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.identity import FirstArrivals
from llm_cost_tracker.storage import client as store
from llm_cost_tracker.storage.migrate import migrate

__all__ = ["Consumer", "KafkaAllInOne", "Receiver"]
log = get_logger("kafka_service")


def _all_ready(*checks: tuple[bool, str]) -> tuple[bool, str]:
    for ok, reason in checks:
        if not ok:
            return False, reason
    return True, "ok"


class Receiver:
    """OTLP/gRPC -> detect/usage/price/redact -> Kafka topic (a :class:`~llm_cost_tracker.protocols.Service`).

    Args:
        settings: validated settings with ``kafka_bootstrap``.
        metrics: the process's metrics.
        kafka_metrics: Kafka metrics on the same registry (made from ``metrics`` by default).
        catalog: price catalog holder (loaded from settings by default).
        serve_http: run the /metrics, /healthz, /readyz port (off when embedded in another service).
        forwarder: with ``forward_all``, where the spans that are not LLM spans go (built here unless given:
            the consumer forwards the LLM spans, after storing them).
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None, kafka_metrics: KafkaMetrics | None = None,
                 catalog: Any = None, serve_http: bool = True, forwarder: Forwarder | None = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.kafka_metrics = kafka_metrics or KafkaMetrics(self.metrics)
        self.catalog = catalog
        self.serve_http = serve_http
        self.forwarder = forwarder
        self._own_forwarder = False
        self.front = FrontEnd(settings, self.metrics, catalog)  # builds nothing yet: start() does
        self.publisher: KafkaPublisher | None = None  # start(): its event-loop thread starts with it
        self.grpc_port = 0
        self.http_port = 0

    def start(self) -> None:
        s = self.settings
        if s.forward_all and self.forwarder is None:
            self.forwarder = build_forwarder(s.forward, self.metrics.registry, None)
            self._own_forwarder = self.forwarder is not None
            if self.forwarder is not None:
                self.forwarder.start()
        self.front.prepare()
        self.catalog = self.front.catalog
        self.publisher = KafkaPublisher(s.kafka, self.kafka_metrics)
        if not self.publisher.start(wait_seconds=min(10.0, s.kafka_request_timeout_ms / 1000)):
            if self.publisher.refusal is not None:
                self.publisher.close(timeout=1.0)
                raise self.publisher.refusal
            log.warning("Kafka not reachable yet; answering UNAVAILABLE until it is",
                        reason=self.publisher.down_reason[:300])
        publisher: Any = self.publisher
        if s.forward_all and self.forwarder is not None:
            publisher = ForwardGate(self.publisher, self.forwarder.room, always=True)
        self.front.bind(publisher, ack_timeout=s.kafka_request_timeout_ms / 1000 + 5, ready=self.ready,
                        serve_http=self.serve_http,
                        passthrough=self.forwarder.passthrough if s.forward_all and self.forwarder else None)
        self.front.start()
        self.grpc_port, self.http_port = self.front.grpc_port, self.front.http_port
        log.info("receiver started", otlp_grpc=f"{s.otlp_grpc.rpartition(':')[0]}:{self.grpc_port}",
                 topic=s.kafka_topic, bootstrap=s.kafka_bootstrap)

    def ready(self) -> tuple[bool, str]:
        """Ready while accepting, the brokers answer, and in-flight records are below 90% of the limit."""
        if not self.front.accepting or self.publisher is None:
            return False, "shutting down" if self.publisher is not None else "starting"
        if not self.publisher.healthy:
            return False, f"Kafka unavailable: {self.publisher.down_reason}"
        if self.publisher.in_flight >= 0.9 * self.settings.kafka_max_in_flight_records:
            return False, "too many records in flight to Kafka"
        saturated = self.front.saturation()
        if saturated:
            return False, saturated
        return True, "ok"

    def reload(self) -> None:
        """SIGHUP: reload the price catalog and the token table; on error keep what is in force."""
        self.front.reload()

    def stop(self) -> None:
        """Refuse new Exports, let those in progress finish, deliver what was accepted, close."""
        timeout = self.settings.shutdown_timeout_seconds
        self.front.stop_accepting(grace=min(self.settings.kafka_request_timeout_ms / 1000 + 5, timeout))
        if self.publisher is not None:
            self.publisher.close(timeout=min(10.0, timeout))
        if self.forwarder is not None and self._own_forwarder:
            self.forwarder.close(timeout)
        self.front.stop_http()
        log.info("receiver stopped")


class Consumer:
    """Kafka topic (consumer group) -> batches -> ClickHouse, committing after each insert (a ``Service``).

    Args:
        settings: validated settings with ``kafka_bootstrap``.
        metrics: the process's metrics.
        kafka_metrics: Kafka metrics on the same registry (made from ``metrics`` by default).
        serve_http: run the /metrics, /healthz, /readyz port.
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None, kafka_metrics: KafkaMetrics | None = None,
                 serve_http: bool = True) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.kafka_metrics = kafka_metrics or KafkaMetrics(self.metrics)
        self.serve_http = serve_http
        self.http_port = 0
        self._stopped = threading.Event()
        self.reader: KafkaBatchReader | None = None  # start(): its event-loop thread starts with it
        self.forwarder: Forwarder | None = None
        """With ``forward_otlp``: stored spans go on to the next hop from here (the Kafka deployment's forwarding)."""
        self.writer: BatchWriter | None = None
        self.http: HttpServer | None = None
        self._client: Any = None

    def start(self) -> None:
        s = self.settings
        # the spend metrics are counted here, after the insert: the tenants' label quotas apply here too
        apply_label_limits(self.metrics.spend.folder, load_tokens(s.access, s.config_file).current)
        self._client = store.connect(s.store)
        applied = migrate(self._client, settings=s.store)
        if applied:
            log.info("schema migrated", versions=[m.version for m in applied])
        loop = LoopThread("kafka-admin")
        try:
            created = loop.call(ensure_topics(s.kafka, [s.kafka_topic, s.kafka_dlq_topic]),
                                timeout=s.kafka_request_timeout_ms / 1000 + 10)
            if created:
                log.info("created topics", topics=created, partitions=s.kafka_partitions)
        finally:
            loop.stop()
        self.forwarder = build_forwarder(s.forward, self.metrics.registry, None)  # None without forward_otlp
        if self.forwarder is not None:
            self.forwarder.start()
        self.reader = KafkaBatchReader(s.kafka, self.kafka_metrics, max_records=s.batch_size)
        self.reader.start()
        self.writer = BatchWriter(
            self.reader, ClickHouseSink(self._client), self.reader.dead_letter_parking(Path(s.data_dir) / "parked"),
            is_retriable, BatchPolicy.from_config(s.batch), self.metrics, first_arrivals=FirstArrivals(self._client),
            on_stored=self.forwarder.stored if self.forwarder is not None else None,
        )
        self.writer.start()
        if self.serve_http:
            self.http = status_server(s, self.metrics.registry, self.ready)  # /metrics guarded as the receiver's
            self.http_port = self.http.port
            self.http.start()
        log.info("consumer started", topic=s.kafka_topic, group=s.kafka_group_id, store=store.describe(s.store))

    def ready(self) -> tuple[bool, str]:
        """Ready while fetching works and the last insert succeeded."""
        if self._stopped.is_set():
            return False, "shutting down"
        if self.reader is None or self.writer is None:
            return False, "starting"
        if self.reader.fetch_error:
            return False, f"cannot fetch from Kafka: {self.reader.fetch_error}"
        if not self.writer.healthy:
            return False, "writes to the store are failing"
        return True, "ok"

    def reload(self) -> None:
        """SIGHUP: nothing to re-read (prices are applied by the receiver; tokens guard only /metrics here)."""

    def stop(self) -> None:
        """Finish the batch in hand (insert + commit), leave the group, close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        timeout = self.settings.shutdown_timeout_seconds
        if self.reader is not None:
            self.reader.close()
        if self.forwarder is not None:
            self.forwarder.give_up_after(timeout)
        if self.writer is not None and not self.writer.join(timeout):
            log.warning("batch in hand not stored before the shutdown timeout; it will be redelivered")
        if self.forwarder is not None:
            self.forwarder.close(timeout)
        if self.reader is not None:
            self.reader.stop()
        if self.http is not None:
            self.http.stop()
        if self._client is not None:
            self._client.close()
        log.info("consumer stopped", rows_written=self.metrics.rows_written_total())


class KafkaAllInOne:
    """``run --kafka-bootstrap``: a receiver and a consumer in one process, through the broker (a ``Service``)."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None, catalog: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        kafka_metrics = KafkaMetrics(self.metrics)
        self.consumer = Consumer(settings, self.metrics, kafka_metrics, serve_http=False)
        self.receiver = Receiver(settings, self.metrics, kafka_metrics, catalog, serve_http=False)
        self.http: HttpServer | None = None
        self.grpc_port = 0
        self.http_port = 0

    def start(self) -> None:
        self.consumer.start()
        self.receiver.forwarder = self.consumer.forwarder  # one forwarding queue per process
        self.receiver.start()
        self.grpc_port = self.receiver.grpc_port
        self.http = status_server(self.settings, self.metrics.registry, self.ready, self.receiver.front.guard)
        self.http_port = self.http.port
        self.http.start()

    def ready(self) -> tuple[bool, str]:
        return _all_ready(self.receiver.ready(), self.consumer.ready())

    def reload(self) -> None:
        self.receiver.reload()

    def stop(self) -> None:
        self.receiver.stop()
        self.consumer.stop()
        if self.http is not None:
            self.http.stop()
