"""The interfaces the parts of the service meet at, in one typing module.

A process runs one :class:`Service` (the all-in-one, the Kafka receiver, consumer or both, the scheduler
worker); ``cli`` starts it, sends it SIGHUP as :meth:`Service.reload` and stops it on SIGTERM. The
stages meet at the queue protocols (:class:`Publisher` on the receiver side, :class:`BatchReader` on
the sink side, both re-exported from :mod:`llm_cost_tracker.types`), at :class:`Transform`, and the
price stage meets the catalog at :class:`Catalog`.

This module sits with ``types`` at the bottom of the layers (pyproject.toml, ``[tool.importlinter]``):
it imports nothing above it, so any layer may name these types.
"""

from __future__ import annotations

from typing import Protocol

from llm_cost_tracker.types import BatchReader, Publisher, TokenUsage, Transform

__all__ = ["BatchReader", "Catalog", "LocalQueue", "Publisher", "Quote", "Service", "Transform"]


class Service(Protocol):
    """What ``cli`` runs: built from settings (nothing started), then this lifecycle."""

    def start(self) -> None:
        """Open what the service needs and start serving; raises when it cannot (nothing left running)."""
        ...

    def ready(self) -> tuple[bool, str]:
        """``(ready, reason)`` for ``/readyz``: whether new work is welcome now, and why not."""
        ...

    def reload(self) -> None:
        """SIGHUP: re-read what can change without a restart (prices, tokens); on error keep what is in force."""
        ...

    def stop(self) -> int | None:
        """Stop serving and release everything; an int is the process exit code (None: 0)."""
        ...


class LocalQueue(Publisher, BatchReader, Protocol):
    """An in-process queue: both ends in one process, with the fill levels readiness and metrics read."""

    @property
    def depth(self) -> int:
        """Records accepted and not yet committed by the sink."""
        ...

    capacity: int
    bytes: int
    max_bytes: int


class Quote(Protocol):
    """What the price stage reads of a quote (``pricing.Quote``, an immutable NamedTuple: read-only here)."""

    @property
    def pricing_model(self) -> str: ...

    @property
    def price_version(self) -> str: ...

    @property
    def cost_pusd(self) -> int: ...

    @property
    def missing(self) -> tuple[str, ...]: ...


class Catalog(Protocol):
    """What pricing needs of ``llm_cost_tracker.pricing.PriceCatalog``."""

    def quote(self, *, provider: str, model: str, at_ns: int, usage: TokenUsage,
              attributes: dict[str, str] | None, tenant: str = "") -> Quote | None: ...
