"""Every setting of the service, in one typed place.

Sources, lowest precedence first: defaults, a TOML file (``--config``), ``LCT_*`` environment
variables, command-line flags. :func:`load` merges them; :meth:`Settings.validate` reports every
problem at once so a bad deployment fails at start-up with the whole list.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "LCT_"
AUXILIARY_ENV = frozenset({"LCT_CONFIG", "LCT_SCHEDULING_DATA"})
"""``LCT_*`` variables that are not settings but are read elsewhere (the config file's path; the benchmark
instances of ``benchmarks/scheduling.py``): never reported as unknown."""
COMPRESSIONS = ("zstd", "lz4", "gzip", "snappy", "none")
ACK_MODES = ("queued", "stored")
_CLUSTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


class ConfigError(ValueError):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one process (receiver, consumer or all-in-one)."""

    # Listeners
    otlp_grpc: str = "127.0.0.1:4317"
    otlp_http: str = "127.0.0.1:4318"
    """OTLP/HTTP listener (POST /v1/traces, protobuf or JSON); 'off' or empty: none."""
    http: str = "127.0.0.1:9464"
    auth_token: str = ""
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
    """Export requests decoded at once."""
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
    clickhouse_url: str = ""
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
    batch_size: int = 10_000
    batch_age_seconds: float = 1.0
    ack: str = "queued"
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
    kafka_sasl_password: str = ""
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

    def validate(self) -> Settings:
        """Return self if every setting is usable, else raise :class:`ConfigError` listing all problems."""
        problems: list[str] = []
        for name in ("otlp_grpc", "http"):
            value = getattr(self, name)
            try:
                split_host_port(value)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if listens(self.otlp_http):
            try:
                split_host_port(self.otlp_http)
            except ValueError as exc:
                problems.append(f"otlp_http: {exc} (or 'off')")
        positive = ("max_message_bytes", "grpc_workers", "grpc_max_streams", "grpc_receive_timeout_seconds",
                    "max_decode_bytes", "http_max_connections", "queue_max_bytes", "queue_capacity", "batch_size",
                    "max_attributes_per_span", "max_attribute_value_bytes", "max_spans_per_request",
                    "max_attributes_per_request", "max_attribute_depth", "call_window_entries",
                    "call_window_seconds", "max_attribute_key_bytes")
        for name in positive:
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.batch_age_seconds <= 0:
            problems.append(f"batch_age_seconds: must be > 0, got {self.batch_age_seconds}")
        if self.batch_size > self.queue_capacity:
            problems.append(f"batch_size ({self.batch_size}) must not exceed queue_capacity ({self.queue_capacity})")
        if self.ack not in ACK_MODES:
            problems.append(f"ack: must be one of {', '.join(ACK_MODES)}, got {self.ack!r}")
        if self.kafka_compression not in COMPRESSIONS:
            problems.append(f"kafka_compression: must be one of {', '.join(COMPRESSIONS)}, got {self.kafka_compression!r}")
        if self.max_future_span_seconds < 0:
            problems.append(f"max_future_span_seconds: must be >= 0, got {self.max_future_span_seconds}")
        for name in ("ttl_raw_days", "ttl_hourly_days", "ttl_daily_days"):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be >= 0 (0 = keep forever), got {getattr(self, name)}")
        if self.clickhouse_cluster and not _CLUSTER_NAME.match(self.clickhouse_cluster):
            problems.append(f"clickhouse_cluster: not a cluster name: {self.clickhouse_cluster!r}")
        problems.extend(_kafka_problems(self))
        problems.extend(_forward_problems(self))
        problems.extend(_scheduler_problems(self))
        from llm_cost_tracker.sql_http._config import problems as sql_problems

        problems.extend(sql_problems(self))
        from llm_cost_tracker.access.tls import TlsFiles

        for name in ("clickhouse_ca_file", "clickhouse_client_cert_file", "clickhouse_client_key_file"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                problems.append(f"{name}: no such file {getattr(self, name)!r}")
        problems.extend(TlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file).problems("tls"))
        if self.clickhouse_url and not self.clickhouse_url.startswith(("http://", "https://")):
            problems.append(f"clickhouse_url: must start with http:// or https://, got {self.clickhouse_url!r}")
        if self.pricing_file and not Path(self.pricing_file).is_file():
            problems.append(f"pricing_file: no such file {self.pricing_file!r}")
        if self.log_format not in ("auto", "json", "console"):
            problems.append(f"log_format: must be auto, json or console, got {self.log_format!r}")
        if problems:
            raise ConfigError(problems)
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (not validated)."""
        return dataclasses.replace(self, **changes)


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _kafka_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    for address in filter(None, s.kafka_bootstrap.split(",")):
        try:
            split_host_port(address.strip())
        except ValueError as exc:
            problems.append(f"kafka_bootstrap: {exc}")
    for name in ("kafka_replication_factor", "kafka_request_timeout_ms", "kafka_max_in_flight_records",
                 "kafka_consumer_buffer_records", "kafka_session_timeout_ms", "kafka_heartbeat_interval_ms"):
        if getattr(s, name) <= 0:
            problems.append(f"{name}: must be > 0, got {getattr(s, name)}")
    for name in ("kafka_partitions", "kafka_linger_ms"):
        if getattr(s, name) < 0:
            problems.append(f"{name}: must be >= 0, got {getattr(s, name)}")
    if s.kafka_heartbeat_interval_ms >= s.kafka_session_timeout_ms:
        problems.append("kafka_heartbeat_interval_ms must be below kafka_session_timeout_ms")
    if s.kafka_topic == s.kafka_dlq_topic:
        problems.append("kafka_dlq_topic must differ from kafka_topic")
    if s.kafka_security_protocol not in KAFKA_SECURITY_PROTOCOLS:
        problems.append(f"kafka_security_protocol: must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, "
                        f"got {s.kafka_security_protocol!r}")
    if s.kafka_security_protocol.startswith("SASL"):
        if s.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            problems.append(f"kafka_sasl_mechanism: must be one of {', '.join(KAFKA_SASL_MECHANISMS)} "
                            f"with {s.kafka_security_protocol}, got {s.kafka_sasl_mechanism!r}")
        if not s.kafka_sasl_username:
            problems.append(f"kafka_sasl_username: required with {s.kafka_security_protocol}")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        if getattr(s, name) and not Path(getattr(s, name)).is_file():
            problems.append(f"{name}: no such file {getattr(s, name)!r}")
    return problems


FORWARD_SCHEMES = ("grpc", "grpcs", "http", "https")


def _forward_problems(s: Settings) -> list[str]:
    """The forwarding settings' problems (the URL's rules are those of ``forward.sender.parse_target``)."""
    import urllib.parse

    problems: list[str] = []
    if s.forward_otlp:
        url = urllib.parse.urlsplit(s.forward_otlp)
        try:
            url.port  # noqa: B018 - raises on a bad port
        except ValueError:
            problems.append("forward_otlp: has an invalid port")
        if url.scheme not in FORWARD_SCHEMES:
            problems.append(f"forward_otlp: must start with {', '.join(x + '://' for x in FORWARD_SCHEMES)}, "
                            f"got {s.forward_otlp.split(':')[0]!r}")
        elif not url.hostname:
            problems.append("forward_otlp: names no host")
        elif url.scheme.startswith("grpc") and url.path not in ("", "/"):
            problems.append("forward_otlp: a grpc:// target is HOST:PORT, without a path")
    elif s.forward_all:
        problems.append("forward_all: needs forward_otlp (the next hop)")
    for item in filter(None, (part.strip() for part in s.forward_headers.split(","))):
        if "=" not in item or not item.partition("=")[0].strip():
            problems.append("forward_headers: must be key=value pairs separated by commas")  # never the value
            break
    for name in ("forward_ca_file", "forward_client_cert_file", "forward_client_key_file"):
        if getattr(s, name) and not Path(getattr(s, name)).is_file():
            problems.append(f"{name}: no such file {getattr(s, name)!r}")
    for name in ("forward_queue_spans", "forward_timeout_seconds", "forward_retry_max_seconds"):
        if getattr(s, name) <= 0:
            problems.append(f"{name}: must be > 0, got {getattr(s, name)}")
    return problems


def _scheduler_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    for name in ("scheduler_max_schedules", "scheduler_concurrency", "scheduler_time_limit_seconds",
                 "scheduler_speed_window_hours", "scheduler_speed_max_spans"):
        if getattr(s, name) <= 0:
            problems.append(f"{name}: must be > 0, got {getattr(s, name)}")
    if s.scheduler_shutdown_seconds < 0:
        problems.append(f"scheduler_shutdown_seconds: must be >= 0, got {s.scheduler_shutdown_seconds}")
    if s.scheduler_tasks_topic == s.scheduler_results_topic:
        problems.append("scheduler_results_topic must differ from scheduler_tasks_topic")
    return problems


def listens(address: str) -> bool:
    """Whether an optional listener's address setting names one ('off' or empty: none)."""
    return address.strip().lower() not in ("", "off")


def split_host_port(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 as ``[::1]:PORT``) and check the port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0-65535, got {port!r}")
    return host.strip("[]"), int(port)


_TYPES: dict[str, Any] = get_type_hints(Settings)


def _coerce(name: str, raw: Any) -> Any:
    kind = _TYPES[name]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    try:
        if kind is int and not isinstance(raw, bool | float):
            return int(raw)
        if kind is float and not isinstance(raw, bool):
            return float(raw)
    except ValueError:
        pass
    else:
        if kind is str:
            return str(raw)
    raise ValueError(f"{name}: expected {kind.__name__}, got {raw!r}")


def load(
    overrides: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, TOML file, ``LCT_*`` environment and ``overrides`` (flags) into Settings.

    Args:
        overrides: values from the command line; ``None`` values are ignored.
        config_file: TOML file with top-level keys named like the fields (``-`` or ``_``).
        environ: the environment to read (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    problems: list[str] = []

    def take(source: str, key: str, raw: Any) -> None:
        name = key.replace("-", "_").lower()
        if name not in names:
            problems.append(f"{source}: unknown setting {key!r}")
            return
        try:
            values[name] = _coerce(name, raw)
        except ValueError as exc:
            problems.append(f"{source}: {exc}")

    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        values["config_file"] = str(config_file)
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"config file {config_file}: {exc}"]) from exc
        for key, raw in data.items():
            if isinstance(raw, dict) or (isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw)):
                continue  # tables and arrays of tables (budgets, pricing, ...) belong to their own modules
            take(f"config file {config_file}", key, raw)
    for key, raw in environ.items():
        # an LCT_* variable that is not a setting is ignored here (unknown_environment() names it for a
        # warning): the environment is shared with other tools and Kubernetes, and must never stop a start
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() in names:
            take(f"environment {key}", key[len(ENV_PREFIX):], raw)
    for key, raw in (overrides or {}).items():
        if raw is not None:
            take("flag", key, raw)
    try:
        settings = Settings(**values).validate()
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return settings


def unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LCT_*`` variables that :func:`load` ignored, each with a hint: "LCT_X (did you mean LCT_Y?)".

    Only names are returned, never values (a value may be a secret).
    """
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)}
    known = {ENV_PREFIX + n.upper() for n in names}
    out = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in AUXILIARY_ENV or key[len(ENV_PREFIX):].lower() in names:
            continue
        close = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.8)
        out.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return out


def config_sections(config_file: str | Path | None) -> dict[str, Any]:
    """The TOML tables of the config file (e.g. ``[budgets]``), for modules that own them."""
    if not config_file:
        return {}
    data = tomllib.loads(Path(config_file).read_text())
    return {k: v for k, v in data.items() if isinstance(v, dict | list) and not isinstance(v, str)}
