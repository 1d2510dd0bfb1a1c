"""What every configuration section shares: built from the settings by field name, validated by itself."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self

__all__ = ["Section"]


class Section:
    """Base of the frozen section dataclasses (``ListenersConfig``, ``KafkaConfig``, ...).

    A section's fields are a subset of :class:`~llm_cost_tracker.config.Settings`' fields under the same
    names (the names of the flag, the ``LCT_*`` variable and the TOML key), so :meth:`of` needs no
    mapping and a problem message names the setting to change. Defaults live once, on ``Settings``.
    """

    __slots__ = ()

    @classmethod
    def of(cls, settings: Any) -> Self:
        """This section of ``settings`` (any object with the section's field names: ``Settings``, a section)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})  # type: ignore[arg-type]

    def validate(self) -> list[str]:
        """This section's own problems, one line each (empty: usable). Pure: reads files' existence only."""
        raise NotImplementedError
