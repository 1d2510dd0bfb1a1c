"""Configuration sections: each checks its own settings; Settings composes them and lists every problem."""

import dataclasses

import pytest

from llm_cost_tracker.config import (
    AccessConfig,
    BatchConfig,
    CallWindowConfig,
    ConfigError,
    DecodeConfig,
    ForwardConfig,
    KafkaConfig,
    ListenersConfig,
    PricingConfig,
    ProcessConfig,
    QueueConfig,
    SchedulerConfig,
    Settings,
    SqlHttpConfig,
    StoreConfig,
    load,
)

# one bad value per section, and the word its problem names
BAD = {
    ListenersConfig: ({"otlp_grpc": "nohost"}, "otlp_grpc"),
    AccessConfig: ({"tls_client_ca_file": "/nonexistent/ca.pem", "tls_cert_file": "/nonexistent/cert.pem",
                    "tls_key_file": "/nonexistent/key.pem"}, "tls"),
    DecodeConfig: ({"max_attribute_depth": 0}, "max_attribute_depth"),
    CallWindowConfig: ({"call_window_seconds": 0.0}, "call_window_seconds"),
    QueueConfig: ({"ack": "later"}, "ack"),
    BatchConfig: ({"batch_age_seconds": 0.0}, "batch_age_seconds"),
    ForwardConfig: ({"forward_all": True}, "forward_all"),
    SqlHttpConfig: ({"sql_max_threads": 0}, "sql_max_threads"),
    StoreConfig: ({"clickhouse_url": "tcp://host:9000"}, "clickhouse_url"),
    KafkaConfig: ({"kafka_dlq_topic": "llm-cost.spans.v1"}, "kafka_dlq_topic"),
    SchedulerConfig: ({"scheduler_results_topic": "llm-cost.tasks.v1"}, "scheduler_results_topic"),
    PricingConfig: ({"pricing_file": "/nonexistent/prices.toml"}, "pricing_file"),
    ProcessConfig: ({"log_format": "xml"}, "log_format"),
}


def test_sections_split_the_settings_exactly() -> None:
    """Every setting belongs to exactly one section, with the type Settings gives it."""
    settings = Settings()
    owners: dict[str, str] = {}
    for section in settings.sections():
        for f in dataclasses.fields(section):
            assert f.name not in owners, f"{f.name} in {owners.get(f.name)} and {type(section).__name__}"
            owners[f.name] = type(section).__name__
            assert f.type == Settings.__dataclass_fields__[f.name].type
    assert set(owners) == {f.name for f in dataclasses.fields(Settings)}


def test_defaults_are_usable_in_every_section() -> None:
    """The defaults give every section an empty problem list."""
    for section in Settings().sections():
        assert section.validate() == [], type(section).__name__


@pytest.mark.parametrize("kind", list(BAD), ids=lambda kind: kind.__name__)
def test_each_section_reports_its_own_problem(kind: type) -> None:
    """A bad value is reported by the section that owns it, and by no other section."""
    changes, word = BAD[kind]
    settings = Settings(**changes)
    for section in settings.sections():
        problems = section.validate()
        if type(section) is kind:
            assert problems and all(word in p for p in problems), problems
        else:
            assert problems == [], (type(section).__name__, problems)


def test_settings_validate_lists_every_section_problem_at_once() -> None:
    """One ConfigError carries the problems of all sections together, plus those between sections."""
    changes = {name: value for bad, _ in BAD.values() for name, value in bad.items()}
    with pytest.raises(ConfigError) as info:
        Settings(**changes, batch_size=300_000).validate()
    problems = info.value.problems
    for _, word in BAD.values():
        assert any(word in p for p in problems), word
    assert "batch_size (300000) must not exceed queue_capacity (200000)" in problems


def test_load_reports_source_and_section_problems_together() -> None:
    """load() lists a type error of one source beside the section problems of the others."""
    with pytest.raises(ConfigError) as info:
        load({"sql_max_concurrent": 0}, None, {"LCT_KAFKA_LINGER_MS": "-1", "LCT_GRPC_WORKERS": "many"})
    text = str(info.value)
    for needle in ("sql_max_concurrent: must be > 0", "grpc_workers: expected int", "kafka_linger_ms: must be >= 0"):
        assert needle in text


def test_a_section_is_built_from_settings_by_name() -> None:
    """A section holds the values of the settings it is taken from, and follows replace()."""
    settings = Settings(kafka_topic="t1", sql_http="off").replace(kafka_bootstrap="127.0.0.1:9092")
    assert (settings.kafka.kafka_topic, settings.kafka.enabled, settings.sql.enabled) == ("t1", True, False)
    assert KafkaConfig.of(settings) == settings.kafka


def test_secrets_stay_out_of_section_reprs() -> None:
    """Tokens, passwords, keys and header values never appear in the repr of a section or of the settings
    (either may be logged)."""
    settings = Settings(auth_token="tok-SECRET1", metrics_token="tok-SECRET2", kafka_sasl_password="SECRET3",
                        forward_headers="x=SECRET4", redaction_hmac_key="SECRET5-0123456789",
                        clickhouse_url="http://u:SECRET6@h:8123")
    text = "".join(repr(section) for section in settings.sections())
    assert "SECRET" not in text
    assert "SECRET" not in repr(settings)
