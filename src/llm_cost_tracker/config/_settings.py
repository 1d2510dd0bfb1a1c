"""The flat table of every setting (the input surface), and the sections the components take from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from llm_cost_tracker.config._backends import (
    KafkaConfig,
    PricingConfig,
    PrivacyConfig,
    ProcessConfig,
    SchedulerConfig,
    StoreConfig,
)
from llm_cost_tracker.config._checks import ConfigError
from llm_cost_tracker.config._ingest import (
    AccessConfig,
    BatchConfig,
    CallWindowConfig,
    DecodeConfig,
    ForwardConfig,
    ListenersConfig,
    QueueConfig,
    SqlHttpConfig,
)
from llm_cost_tracker.config._section import Section

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one process (receiver, consumer or all-in-one)."""

    # Listeners
    otlp_grpc: str = "127.0.0.1:4317"
    otlp_http: str = "127.0.0.1:4318"
    """OTLP/HTTP listener (POST /v1/traces, protobuf or JSON); 'off' or empty: none."""
    http: str = "127.0.0.1:9464"
    auth_token: str = dataclasses.field(default="", repr=False)
    """A single admin bearer token; per-tenant tokens live in the config file's [auth] table."""
    metrics_token: str = dataclasses.field(default="", repr=False)
    """A bearer token that may read /metrics and nothing else (the ServiceMonitor's); admin tokens may too.
    With tokens configured, /metrics needs one of them."""
    admin_tenant_from_payload: bool = False
    """Spans sent with an admin token keep their payload's tenant attribute (a trusted gateway forwarding
    many tenants). Without it, an admin request names its tenant with the 'lct-tenant' header, or has none."""
    tls_cert_file: str = ""
    """PEM certificate for the gRPC and HTTP listeners (TLS when set; reloaded when the file changes)."""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    """When set, clients must present a certificate signed by this CA (mutual TLS)."""
    config_file: str = ""
    """The TOML file the settings came from; its tables ([auth], [[budgets]], ...) belong to their modules."""
    max_message_bytes: int = 16 * 1024 * 1024
    grpc_workers: int = 8
    """Export requests handled at once per protocol (decoding, or waiting for their acknowledgement)."""
    stage_workers: int = 1
    """Export requests decoded and run through the stages at once, over both protocols. They hold the GIL,
    so more than one only interleave, and starve the batch writer (docs/performance.md)."""
    columnar_path: bool = True
    """Run the requests the wire scan reads through the columnar path (no Python object per span; the same
    rows), where it applies: the all-in-one service without forwarding (docs/architecture.md)."""
    grpc_max_streams: int = 64
    """Export calls in progress at once (receiving, waiting or decoding); more get RESOURCE_EXHAUSTED."""
    grpc_receive_timeout_seconds: float = 10.0
    """Time an admitted Export call has to send its message; past it the call is cancelled."""
    max_decode_bytes: int = 384 * 1024 * 1024
    """Memory budget of requests being decoded (16 bytes per message byte, docs/hardening.md)."""
    http_max_connections: int = 256
    """Open connections on the HTTP port; one more is answered 503 and closed."""
    # SQL endpoint over the embedded store (docs/sql-endpoint.md)
    sql_http: str = "127.0.0.1:8123"
    """ClickHouse HTTP interface, read-only, over the embedded store while the service runs ('off': none)."""
    sql_max_execution_seconds: float = 30.0
    sql_max_result_rows: int = 1_000_000
    sql_max_result_bytes: int = 256 * 1024 * 1024
    sql_max_memory_bytes: int = 1024 * 1024 * 1024
    sql_max_concurrent: int = 2
    """Queries run at once; more wait for a slot (up to the execution limit), then get code 202."""
    sql_max_threads: int = 1
    """Engine threads per query: bounds the cores queries take from ingest."""
    # Forwarding priced spans to the next OTLP hop (docs/forwarding.md)
    forward_otlp: str = ""
    """grpc://HOST:PORT (grpcs:// with TLS) or http(s)://HOST:PORT/v1/traces: send every stored LLM span there
    with its cost attributes. Empty: no forwarding."""
    forward_all: bool = False
    """Also pass the spans that are not LLM spans to the next hop, untouched (the gateway shape)."""
    forward_headers: str = dataclasses.field(default="", repr=False)
    """Header fields sent to the next hop, ``key=value,key2=value2`` (values URL-encoded), e.g. a token."""
    forward_ca_file: str = ""
    """CA bundle for a grpcs:// or https:// next hop (default: the system's)."""
    forward_client_cert_file: str = ""
    """Client certificate for a next hop that requires mutual TLS."""
    forward_client_key_file: str = ""
    forward_queue_spans: int = 100_000
    """Spans waiting for the next hop; when full, ingest answers UNAVAILABLE (503) until it drains."""
    forward_timeout_seconds: float = 10.0
    """Deadline of one Export to the next hop."""
    forward_retry_max_seconds: float = 30.0
    """Longest wait between retries of an Export the next hop did not take."""
    # Storage
    data_dir: str = "./.llm-cost-tracker"
    clickhouse_url: str = dataclasses.field(default="", repr=False)  # may carry user:password
    clickhouse_database: str = "default"
    clickhouse_ca_file: str = ""
    """CA bundle for an https:// ClickHouse URL (default: the system's)."""
    clickhouse_tls_verify: bool = True
    clickhouse_client_cert_file: str = ""
    """Client certificate for ClickHouse servers that require mutual TLS."""
    clickhouse_client_key_file: str = ""
    clickhouse_cluster: str = ""
    """Cluster name: migrations use ON CLUSTER and Replicated engines (docs/schema.md). Empty: one node."""
    ttl_raw_days: int = 400
    """Days raw spans are kept (0 = forever); repricing a past period needs its raw spans."""
    ttl_hourly_days: int = 400
    """Days hourly rollups are kept (0 = forever)."""
    ttl_daily_days: int = 0
    """Days daily rollups are kept (0 = forever)."""
    max_future_span_seconds: int = 86_400
    """How far ahead of the receiver's clock a span may start; later ones are rejected (partial_success)."""
    # Pipeline
    queue_capacity: int = 200_000
    queue_max_bytes: int = 256 * 1024 * 1024
    """In-process queue bound in estimated bytes of records (docs/hardening.md); reached first by big spans."""
    batch_size: int = 40_000
    """Spans per insert: bigger parts save chDB merge levels; peak RSS held under 1 GiB (docs/performance.md).
    A batch of records (not of the columnar path's tables) also stops at 2/5 of ``queue_max_bytes``."""
    batch_age_seconds: float = 1.0
    ack: str = "queued"
    ack_timeout_seconds: float = 5.0
    """With ack stored: how long an Export waits for its spans to be stored before UNAVAILABLE (at least 3 batch ages)."""
    shutdown_timeout_seconds: float = 30.0
    sink_retry_max_seconds: float = 30.0
    max_attributes_per_span: int = 1024
    max_attribute_value_bytes: int = 65_536
    max_spans_per_request: int = 65_536
    """Spans in one Export request; more gets INVALID_ARGUMENT (docs/hardening.md)."""
    max_attributes_per_request: int = 1_048_576
    """Span plus resource attributes in one Export request; more gets INVALID_ARGUMENT."""
    max_attribute_depth: int = 16
    """Nesting of arrays/kvlists in one attribute value; deeper parts are stored as a marker."""
    max_attribute_key_bytes: int = 256
    """Bytes of an attribute key; an attribute with a longer key is dropped and counted (docs/hardening.md)."""
    tenant_attribute: str = "tenant.id"
    call_window_entries: int = 100_000
    """Call identity (docs/dialects.md): LLM spans remembered to recognise a later span of the same call."""
    call_window_seconds: float = 300.0
    """Call identity: how long a span is remembered (spans of one call arrive within the exporters' delays)."""
    # Pricing
    pricing_file: str = ""
    # Kafka (receiver -> topic -> consumer); empty bootstrap = in-process queue
    kafka_bootstrap: str = ""
    kafka_topic: str = "llm-cost.spans.v1"
    kafka_dlq_topic: str = "llm-cost.spans.dlq"
    kafka_idempotence: bool = True
    kafka_compression: str = "zstd"
    kafka_linger_ms: int = 5
    kafka_max_batch_bytes: int = 1_048_576
    kafka_group_id: str = "llm-cost-tracker"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = dataclasses.field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_partitions: int = 6
    """Partitions of the topics a receiver creates when they do not exist (0: never create topics)."""
    kafka_replication_factor: int = 1
    kafka_request_timeout_ms: int = 10_000
    """Broker acknowledgement deadline: past it an Export is answered UNAVAILABLE."""
    kafka_max_in_flight_records: int = 100_000
    """Receiver: records sent and not yet acknowledged; past it Exports get RESOURCE_EXHAUSTED."""
    kafka_consumer_buffer_records: int = 50_000
    """Consumer: records fetched and not yet stored; past it fetching pauses."""
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    # Scheduler worker and schedules API (docs/scheduler.md, "Worker")
    scheduler_tasks_topic: str = "llm-cost.tasks.v1"
    """Topic the ``scheduler`` worker reads JSON task batches from (key: batch id)."""
    scheduler_results_topic: str = "llm-cost.schedules.v1"
    """Topic the worker publishes each batch's result to (key: batch id)."""
    scheduler_group_id: str = "llm-cost-tracker-scheduler"
    scheduler_max_schedules: int = 5000
    """Schedules decoded per batch (the optimizer's budget)."""
    scheduler_time_limit_seconds: float = 30.0
    """Wall-clock limit of one solve; past it the greedy fallback answers."""
    scheduler_concurrency: int = 2
    """Batches solved at once by one worker (or by the embedded schedules API)."""
    scheduler_shutdown_seconds: float = 30.0
    """On SIGTERM: seconds to let solves in hand finish before they are cancelled (and redelivered)."""
    scheduler_speed_window_hours: float = 168.0
    """A model without a stated throughput is measured from its spans of this many recent hours."""
    scheduler_speed_max_spans: int = 5000
    """... at most this many (the newest) spans per model."""
    scheduler_job_id_attribute: str = "llm_cost_tracker.job_id"
    """Span attribute carrying a planned job's id (``<batch_id>/<job>``), to compare plans with spans."""
    # Privacy (docs/redaction.md): the rules are the config file's [redaction] table
    redaction_hmac_key: str = dataclasses.field(default="", repr=False)
    """Key of the redaction mode 'hash' (HMAC-SHA256), 16+ characters; prefer LCT_REDACTION_HMAC_KEY."""
    # Logging
    log_level: str = "info"
    log_format: str = "auto"
    # Localization (docs/localization.md)
    lang: str = ""
    """Language of reports and budget API messages (en, es, fr, de, ja, zh); empty: LC_ALL/LC_MESSAGES/LANG."""

    # The sections: typed views of the fields above, one per component (config/__init__.py says why).
    @cached_property
    def listeners(self) -> ListenersConfig:
        return ListenersConfig.of(self)

    @cached_property
    def access(self) -> AccessConfig:
        return AccessConfig.of(self)

    @cached_property
    def decode(self) -> DecodeConfig:
        return DecodeConfig.of(self)

    @cached_property
    def calls(self) -> CallWindowConfig:
        return CallWindowConfig.of(self)

    @cached_property
    def queue(self) -> QueueConfig:
        return QueueConfig.of(self)

    @cached_property
    def batch(self) -> BatchConfig:
        return BatchConfig.of(self)

    @cached_property
    def forward(self) -> ForwardConfig:
        return ForwardConfig.of(self)

    @cached_property
    def sql(self) -> SqlHttpConfig:
        return SqlHttpConfig.of(self)

    @cached_property
    def store(self) -> StoreConfig:
        return StoreConfig.of(self)

    @cached_property
    def kafka(self) -> KafkaConfig:
        return KafkaConfig.of(self)

    @cached_property
    def scheduler(self) -> SchedulerConfig:
        return SchedulerConfig.of(self)

    @cached_property
    def pricing(self) -> PricingConfig:
        return PricingConfig.of(self)

    @cached_property
    def privacy(self) -> PrivacyConfig:
        return PrivacyConfig.of(self)

    @cached_property
    def process(self) -> ProcessConfig:
        return ProcessConfig.of(self)

    def sections(self) -> tuple[Section, ...]:
        """Every section, in the order their problems are listed."""
        return (self.listeners, self.access, self.decode, self.calls, self.queue, self.batch, self.forward,
                self.sql, self.store, self.kafka, self.scheduler, self.pricing, self.privacy, self.process)

    def problems(self) -> list[str]:
        """Every section's own problems, then those between sections (empty: usable)."""
        problems = [problem for section in self.sections() for problem in section.validate()]
        if self.batch_size > self.queue_capacity:  # the writer's batch must fit the queue it takes from
            problems.append(f"batch_size ({self.batch_size}) must not exceed queue_capacity ({self.queue_capacity})")
        return problems

    def validate(self) -> Settings:
        """Return self if every setting is usable, else raise :class:`ConfigError` listing all problems."""
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (not validated)."""
        return dataclasses.replace(self, **changes)
