"""The sections of what the service talks to and runs beside: the store, Kafka, the scheduler worker,
pricing, redaction and the process itself (logging, language, shutdown, the config file)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llm_cost_tracker.config._checks import at_least_zero, missing_files, positive, split_host_port
from llm_cost_tracker.config._section import Section

__all__ = ["COMPRESSIONS", "KAFKA_SASL_MECHANISMS", "KAFKA_SECURITY_PROTOCOLS", "KafkaConfig", "PricingConfig",
           "PrivacyConfig", "ProcessConfig", "SchedulerConfig", "StoreConfig"]

COMPRESSIONS = ("zstd", "lz4", "gzip", "snappy", "none")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


@dataclass(frozen=True, slots=True)
class StoreConfig(Section):
    """Where the store is (embedded chDB in ``data_dir``, or a server) and how long it keeps what (``storage``)."""

    data_dir: str
    clickhouse_url: str = field(repr=False)  # may carry user:password
    clickhouse_database: str
    clickhouse_ca_file: str
    clickhouse_tls_verify: bool
    clickhouse_client_cert_file: str
    clickhouse_client_key_file: str
    clickhouse_cluster: str
    ttl_raw_days: int
    ttl_hourly_days: int
    ttl_daily_days: int

    @property
    def embedded(self) -> bool:
        """Whether the store is the embedded chDB one (no ``clickhouse_url``)."""
        return not self.clickhouse_url

    def validate(self) -> list[str]:
        problems = at_least_zero(self, "ttl_raw_days", "ttl_hourly_days", "ttl_daily_days", note=" (0 = keep forever)")
        if self.clickhouse_cluster and not _CLUSTER_NAME.match(self.clickhouse_cluster):
            problems.append(f"clickhouse_cluster: not a cluster name: {self.clickhouse_cluster!r}")
        problems += missing_files(self, "clickhouse_ca_file", "clickhouse_client_cert_file",
                                  "clickhouse_client_key_file")
        if self.clickhouse_url and not self.clickhouse_url.startswith(("http://", "https://")):
            problems.append(f"clickhouse_url: must start with http:// or https://, got {self.clickhouse_url!r}")
        return problems


@dataclass(frozen=True, slots=True)
class KafkaConfig(Section):
    """The Kafka clients (``queue.kafka*``): brokers, topics, producer, consumer group, security."""

    kafka_bootstrap: str
    kafka_topic: str
    kafka_dlq_topic: str
    kafka_idempotence: bool
    kafka_compression: str
    kafka_linger_ms: int
    kafka_max_batch_bytes: int
    kafka_group_id: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    kafka_sasl_password: str = field(repr=False)
    kafka_ssl_cafile: str
    kafka_ssl_certfile: str
    kafka_ssl_keyfile: str
    kafka_partitions: int
    kafka_replication_factor: int
    kafka_request_timeout_ms: int
    kafka_max_in_flight_records: int
    kafka_consumer_buffer_records: int
    kafka_session_timeout_ms: int
    kafka_heartbeat_interval_ms: int

    @property
    def enabled(self) -> bool:
        """Whether brokers are named (empty bootstrap: the in-process queue)."""
        return bool(self.kafka_bootstrap)

    def validate(self) -> list[str]:
        problems: list[str] = []
        for address in filter(None, self.kafka_bootstrap.split(",")):
            try:
                split_host_port(address.strip())
            except ValueError as exc:
                problems.append(f"kafka_bootstrap: {exc}")
        if self.kafka_compression not in COMPRESSIONS:
            problems.append(f"kafka_compression: must be one of {', '.join(COMPRESSIONS)}, "
                            f"got {self.kafka_compression!r}")
        problems += positive(self, "kafka_replication_factor", "kafka_request_timeout_ms",
                             "kafka_max_in_flight_records", "kafka_consumer_buffer_records",
                             "kafka_session_timeout_ms", "kafka_heartbeat_interval_ms")
        problems += at_least_zero(self, "kafka_partitions", "kafka_linger_ms")
        if self.kafka_heartbeat_interval_ms >= self.kafka_session_timeout_ms:
            problems.append("kafka_heartbeat_interval_ms must be below kafka_session_timeout_ms")
        if self.kafka_topic == self.kafka_dlq_topic:
            problems.append("kafka_dlq_topic must differ from kafka_topic")
        protocol = self.kafka_security_protocol
        if protocol not in KAFKA_SECURITY_PROTOCOLS:
            problems.append(f"kafka_security_protocol: must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, "
                            f"got {protocol!r}")
        if protocol.startswith("SASL"):
            if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
                problems.append(f"kafka_sasl_mechanism: must be one of {', '.join(KAFKA_SASL_MECHANISMS)} "
                                f"with {protocol}, got {self.kafka_sasl_mechanism!r}")
            if not self.kafka_sasl_username:
                problems.append(f"kafka_sasl_username: required with {protocol}")
        return problems + missing_files(self, "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")


@dataclass(frozen=True, slots=True)
class SchedulerConfig(Section):
    """The scheduler worker and the schedules API (``services.scheduler``, ``services.schedules_api``)."""

    scheduler_tasks_topic: str
    scheduler_results_topic: str
    scheduler_group_id: str
    scheduler_max_schedules: int
    scheduler_time_limit_seconds: float
    scheduler_concurrency: int
    scheduler_shutdown_seconds: float
    scheduler_speed_window_hours: float
    scheduler_speed_max_spans: int
    scheduler_job_id_attribute: str

    def validate(self) -> list[str]:
        problems = positive(self, "scheduler_max_schedules", "scheduler_concurrency", "scheduler_time_limit_seconds",
                            "scheduler_speed_window_hours", "scheduler_speed_max_spans")
        problems += at_least_zero(self, "scheduler_shutdown_seconds")
        if self.scheduler_tasks_topic == self.scheduler_results_topic:
            problems.append("scheduler_results_topic must differ from scheduler_tasks_topic")
        return problems


@dataclass(frozen=True, slots=True)
class PricingConfig(Section):
    """The user's price file over the bundled catalog (``pricing``; its [pricing] table is ``pricing._settings``)."""

    pricing_file: str

    def validate(self) -> list[str]:
        return missing_files(self, "pricing_file")


@dataclass(frozen=True, slots=True)
class PrivacyConfig(Section):
    """The redaction key (``transforms.redact``; the rules are the config file's [redaction] table, whose
    parser checks the key against the modes that use it)."""

    redaction_hmac_key: str = field(repr=False)

    def validate(self) -> list[str]:
        return []  # a short key is a problem only for a 'hash' rule: the [redaction] parser reports it


@dataclass(frozen=True, slots=True)
class ProcessConfig(Section):
    """What every process has: its config file (whose tables belong to their modules), shutdown, logs, language."""

    config_file: str
    shutdown_timeout_seconds: float
    log_level: str
    log_format: str
    lang: str

    def validate(self) -> list[str]:
        if self.log_format not in ("auto", "json", "console"):
            return [f"log_format: must be auto, json or console, got {self.log_format!r}"]
        return []
