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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from llm_cost_tracker.types import BatchReader, BatchTransform, Publisher, TokenUsage, Transform

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["BatchReader", "BatchTransform", "Catalog", "LocalQueue", "Publisher", "Quote", "RowQuotes", "Service",
           "Transform"]


@runtime_checkable
class Service(Protocol):
    """What ``cli`` runs: built from settings (every part declared, nothing opened or started), then this
    lifecycle. ``ready()`` answers before ``start()`` too (not ready), and ``stop()`` is safe at any point."""

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

    def code_of(self, provider: str, model: str, tenant: str = "") -> int: ...

    def quote_rows(self, codes: npt.ArrayLike, at_ns: npt.ArrayLike, input_tokens: npt.ArrayLike,
                   output_tokens: npt.ArrayLike, cache_read_tokens: npt.ArrayLike,
                   cache_write_tokens: npt.ArrayLike, reasoning_tokens: npt.ArrayLike, tenant: str,
                   row_names: Callable[[int], tuple[str, str]]) -> RowQuotes: ...


class RowQuotes(Protocol):
    """What the price stage reads of many rows' prices (``pricing.RowQuotes``, arrays in row order)."""

    @property
    def cost(self) -> np.ndarray: ...

    @property
    def priced(self) -> np.ndarray: ...

    @property
    def slot(self) -> np.ndarray: ...

    @property
    def models(self) -> Sequence[str]: ...

    @property
    def versions(self) -> Sequence[str]: ...
