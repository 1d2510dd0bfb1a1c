"""Every setting of the service: one flat table to load, one section per component to build and check.

Sources, lowest precedence first: defaults, a TOML file (``--config``), ``LCT_*`` environment
variables, command-line flags. :func:`load` merges them into :class:`Settings`, the flat table whose
field names are the flags, variables and TOML keys. ``Settings`` composes the components' sections,
small frozen dataclasses (:class:`ListenersConfig`, :class:`KafkaConfig`, :class:`StoreConfig`, ...)
reached as ``settings.listeners``, ``settings.kafka``, ``settings.store``. Each section checks itself
(``validate() -> list[str]``) and each component is built from its section (``from_config``);
:meth:`Settings.validate` joins every section's problems, plus the few between sections, into one
:class:`ConfigError`, so a bad deployment fails at start-up with the whole list.

Why the sections live here and not in their components' packages: ``config`` is a utility layer that
every component imports (``[tool.importlinter]``), so the sections it composes must sit at or below
it; a section in ``sql_http/`` or ``queue/`` would make ``Settings.validate`` import upward. The other
way round, sections in the components and a higher module composing them, would leave :func:`load`
unable to report every problem by itself, and every caller (the CLI, tests, tools) would have to know
that composer. So the section *types and their checks* are here, one per component and named after it,
and what to *build* from a section stays with the component. Why the flat table stays the input
surface: a section's fields keep the setting's own names, so flags, variables, TOML keys, problem
messages and code use one word for each setting, the loader maps nothing, and defaults are written
once (on ``Settings``); a test checks that the sections split the table exactly.
"""

from __future__ import annotations

from llm_cost_tracker.config._backends import (
    COMPRESSIONS,
    KAFKA_SASL_MECHANISMS,
    KAFKA_SECURITY_PROTOCOLS,
    KafkaConfig,
    PricingConfig,
    PrivacyConfig,
    ProcessConfig,
    SchedulerConfig,
    StoreConfig,
)
from llm_cost_tracker.config._checks import ConfigError, listens, split_host_port
from llm_cost_tracker.config._ingest import (
    ACK_MODES,
    FORWARD_SCHEMES,
    AccessConfig,
    BatchConfig,
    CallWindowConfig,
    DecodeConfig,
    ForwardConfig,
    ListenersConfig,
    QueueConfig,
    SqlHttpConfig,
)
from llm_cost_tracker.config._load import (
    AUXILIARY_ENV,
    ENV_PREFIX,
    config_sections,
    load,
    unknown_environment,
)
from llm_cost_tracker.config._section import Section
from llm_cost_tracker.config._settings import Settings

__all__ = [
    "ACK_MODES", "AUXILIARY_ENV", "COMPRESSIONS", "ENV_PREFIX", "FORWARD_SCHEMES", "KAFKA_SASL_MECHANISMS",
    "KAFKA_SECURITY_PROTOCOLS", "AccessConfig", "BatchConfig", "CallWindowConfig", "ConfigError", "DecodeConfig",
    "ForwardConfig", "KafkaConfig", "ListenersConfig", "PricingConfig", "PrivacyConfig", "ProcessConfig",
    "QueueConfig", "SchedulerConfig", "Section", "Settings", "SqlHttpConfig", "StoreConfig", "config_sections",
    "listens", "load", "split_host_port", "unknown_environment",
]
