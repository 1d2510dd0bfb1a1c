"""Settings: precedence of sources and validation that reports every problem."""

import pytest

from llm_cost_tracker.config import ConfigError, Settings, load, unknown_environment


def test_empty_sources_equal_defaults() -> None:
    """With no file, environment or flags, the settings are the defaults."""
    assert load({}, None, {}) == Settings()


def test_precedence_file_env_flags(tmp_path) -> None:
    """Flags beat LCT_ variables, which beat the TOML file, which beats the defaults."""
    cfg = tmp_path / "lct.toml"
    cfg.write_text('otlp_grpc = "127.0.0.1:1111"\nhttp = "127.0.0.1:2222"\nbatch-size = 50\n[budgets]\nx = 1\n')
    env = {"LCT_HTTP": "127.0.0.1:3333", "LCT_KAFKA_IDEMPOTENCE": "false"}
    s = load({"batch_size": 70, "auth_token": None}, cfg, env)
    assert (s.otlp_grpc, s.http, s.batch_size, s.kafka_idempotence) == ("127.0.0.1:1111", "127.0.0.1:3333", 70, False)


def test_all_problems_reported_together() -> None:
    """Every invalid setting is listed in one error, including unknown flag names."""
    with pytest.raises(ConfigError) as info:
        load({"batch_size": 0, "otlp_grpc": "nohost", "nope": 1}, None, {"LCT_ACK": "later"})
    text = str(info.value)
    for needle in ("batch_size", "otlp_grpc", "nope", "ack"):
        assert needle in text


def test_unknown_environment_variables_never_stop_a_start() -> None:
    """LCT_ variables that are not settings (ours for the benchmarks, a typo, Kubernetes') are ignored, and
    named with a hint, without their values, for a warning."""
    env = {"LCT_SCHEDULING_DATA": "/data", "LCT_BATCH_SIZ": "5", "LCT_PORT": "tcp://10.0.0.1:80",
           "LCT_BATCH_SIZE": "7"}
    assert load({}, None, env).batch_size == 7
    assert unknown_environment(env) == ["LCT_BATCH_SIZ (did you mean LCT_BATCH_SIZE?)", "LCT_PORT"]


def test_bad_types_are_reported() -> None:
    """A non-numeric value for a numeric setting is a configuration error, not a crash."""
    with pytest.raises(ConfigError, match="queue_capacity"):
        load({}, None, {"LCT_QUEUE_CAPACITY": "lots"})
