"""Prometheus metrics of the Kafka receiver and consumer, registered on the process's :class:`Metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from llm_cost_tracker.metrics import Metrics


class KafkaMetrics:
    """Kafka counters and gauges, on the same registry as the pipeline's metrics.

    Args:
        metrics: the process's metrics; its registry gets these too.
    """

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.pipeline = metrics
        # receiver side
        self.produced = Counter("llm_kafka_produced_records", "Span records acknowledged by the broker.",
                                registry=r)
        self.produce_errors = Counter("llm_kafka_produce_errors",
                                      "Span records the broker did not acknowledge, by error type.",
                                      ("error",), registry=r)
        self.busy = Counter("llm_kafka_busy_rejections",
                            "Export requests refused with RESOURCE_EXHAUSTED (too many records in flight).",
                            registry=r)
        self.in_flight = Gauge("llm_kafka_in_flight_records", "Records sent and not yet acknowledged.",
                               registry=r)
        self.broker_up = Gauge("llm_kafka_broker_up", "1 while the last exchange with the brokers succeeded.",
                               registry=r)
        # consumer side
        self.consumed = Counter("llm_kafka_consumed_records", "Messages fetched from the span topic (markers included).",
                                ("topic", "partition"), registry=r)
        self.lag = Gauge("llm_kafka_consumer_lag", "High watermark minus committed offset, per partition.",
                         ("topic", "partition"), registry=r)
        self.batches = Counter("llm_kafka_batches_committed",
                               "Offset ranges stored (or dead-lettered) and committed.", registry=r)
        self.committed_records = Counter("llm_kafka_committed_records",
                                         "Span records in committed batches.", registry=r)
        self.commit_failures = Counter("llm_kafka_commit_failures",
                                       "Offset commits that failed (the range is redelivered and deduplicated).",
                                       registry=r)
        self.dlq = Counter("llm_kafka_dlq_records", "Messages sent to the dead-letter topic, by reason.",
                           ("reason",), registry=r)
        self.markers = Counter("llm_kafka_flush_markers", "Flush markers written to close age-limited batches.",
                               registry=r)
        self.rebalances = Counter("llm_kafka_rebalances", "Partition assignments received.", registry=r)
        self.offset_gaps = Counter("llm_kafka_offset_gaps",
                                   "Fetches that skipped offsets of a partition: 'reread' from the first missing "
                                   "offset, or 'skipped' when the log itself holds nothing there (offsets passed).",
                                   ("outcome",), registry=r)
        self.buffered = Gauge("llm_kafka_buffered_records", "Messages fetched and not yet committed.", registry=r)
