"""The ``[pricing]`` table of the config file: reported-cost fallback and catalog sync.

Read here rather than in ``config.Settings`` (flat ``LCT_*`` keys) because, like ``[budgets]`` and
``[redaction]``, it is a table its own module owns. Every problem is listed at once (``ConfigError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from llm_cost_tracker.config import ConfigError, config_sections

__all__ = ["PricingSettings", "load_pricing_settings", "parse_pricing_settings"]

DEFAULT_SYNC_INTERVAL_SECONDS = 6 * 3600
DEFAULT_MAX_CHANGE_FACTOR = Decimal(5)
DEFAULT_REPORTED_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class PricingSettings:
    """What ``[pricing]`` says (defaults: no fallback, no sync)."""

    reported_cost_fallback: bool = False
    """Price a model the catalog does not know from the cost its producer reported ('reported')."""
    reported_cost_tolerance: Decimal = DEFAULT_REPORTED_TOLERANCE
    """Relative difference past which a computed and a reported cost are counted as disagreeing."""
    sync_url: str = ""
    """Where the running service fetches a price list (LiteLLM's map or our data file) on an interval."""
    sync_interval_seconds: float = DEFAULT_SYNC_INTERVAL_SECONDS
    sync_max_change_factor: Decimal = DEFAULT_MAX_CHANGE_FACTOR
    """A synced price moving by more than this factor (or dropping to 0) is refused."""


_KEYS = frozenset(PricingSettings.__dataclass_fields__)


def _decimal(raw: Any, where: str, problems: list[str], minimum: Decimal) -> Decimal | None:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        value = Decimal("NaN")
    if isinstance(raw, bool) or not value.is_finite() or value < minimum:
        problems.append(f"{where}: expected a number >= {minimum}, got {raw!r}")
        return None
    return value


def parse_pricing_settings(sections: Mapping[str, Any]) -> PricingSettings:
    """The settings in the ``[pricing]`` table of ``sections``; raises :class:`ConfigError` listing every problem."""
    raw = sections.get("pricing", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(["pricing: expected a table [pricing]"])
    problems = [f"pricing: unknown key {k!r} (known: {', '.join(sorted(_KEYS))})" for k in sorted(set(raw) - _KEYS)]
    kwargs: dict[str, Any] = {}
    if "reported_cost_fallback" in raw:
        if isinstance(raw["reported_cost_fallback"], bool):
            kwargs["reported_cost_fallback"] = raw["reported_cost_fallback"]
        else:
            problems.append(f"pricing.reported_cost_fallback: expected true or false, got {raw['reported_cost_fallback']!r}")
    if "sync_url" in raw:
        url = raw["sync_url"]
        if not isinstance(url, str) or (url and not url.startswith(("http://", "https://", "file://", "/"))):
            problems.append(f"pricing.sync_url: expected an http(s):// or file:// URL or an absolute path, got {url!r}")
        else:
            kwargs["sync_url"] = url
    for key, minimum in (("reported_cost_tolerance", Decimal(0)), ("sync_max_change_factor", Decimal(1)),
                         ("sync_interval_seconds", Decimal(60))):
        if key in raw:
            value = _decimal(raw[key], f"pricing.{key}", problems, minimum)
            if value is not None:
                kwargs[key] = float(value) if key == "sync_interval_seconds" else value
    if problems:
        raise ConfigError(problems)
    return PricingSettings(**kwargs)


def load_pricing_settings(config_file: str | Path | None) -> PricingSettings:
    """The ``[pricing]`` settings of a config file (defaults without one)."""
    return parse_pricing_settings(config_sections(config_file) if config_file else {})
