"""A thread-safe holder that swaps whole catalogs: reload without restart, no span lost.

Readers take ``holder.current`` (one attribute read, atomic) and use that immutable catalog for the
span or batch at hand; ``reload()`` builds a new catalog off to the side and swaps the reference only
when it loaded cleanly, so a bad price file leaves the old prices in force. The service wires SIGHUP
to ``reload()``; ``start_polling()`` also reloads when the user price file changes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from llm_cost_tracker.pricing._catalog import PriceCatalog
from llm_cost_tracker.pricing._model import CatalogError
from llm_cost_tracker.pricing._periodic import Periodic

_log = structlog.get_logger("llm_cost_tracker.pricing")


class ReloadingCatalog:
    """Holds the current :class:`PriceCatalog` and replaces it atomically on :meth:`reload`."""

    __slots__ = ("current", "_overrides", "_loader", "_lock", "_stamp", "_poll", "reloads", "failures",
                 "data_dir")

    def __init__(
        self,
        overrides: str | Path | None = None,
        loader: Callable[[str | Path | None], PriceCatalog] | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        """Load the first catalog now (raising :class:`CatalogError` if it is invalid).

        Args:
            overrides: the user price file to read (and watch), or None.
            loader: builds a catalog from the overrides path (tests inject one).
            data_dir: the data directory whose synced price layers apply (``pricing sync``), or None.
        """
        self._overrides = overrides
        self.data_dir = data_dir
        self._loader: Callable[[str | Path | None], PriceCatalog] = loader or (
            lambda path: PriceCatalog.load(path, data_dir=data_dir))
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self.current: PriceCatalog = self._loader(overrides)
        self._poll: Periodic | None = None
        self.reloads = 0
        self.failures = 0

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._overrides is None:
            return None
        try:
            stat = os.stat(self._overrides)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def reload(self) -> bool:
        """Build a fresh catalog and swap it in; on an invalid file keep the old one and return False."""
        with self._lock:
            stamp = self._file_stamp()
            try:
                fresh = self._loader(self._overrides)
                fresh.compile_columns()
            except (CatalogError, OSError) as exc:
                self.failures += 1
                _log.error("pricing.reload_failed", path=str(self._overrides), error=str(exc))
                return False
            self.current = fresh
            self._stamp = stamp
            self.reloads += 1
            _log.info("pricing.reloaded", path=str(self._overrides), entries=len(fresh))
            return True

    def reload_if_changed(self) -> bool:
        """Reload when the user price file's mtime or size changed; True if a new catalog is in force."""
        if self._file_stamp() == self._stamp:
            return False
        return self.reload()

    def start_polling(self, interval_s: float = 2.0) -> None:
        """Check the user price file every ``interval_s`` seconds in a daemon thread."""
        if self._poll is not None or self._overrides is None:
            return
        self._poll = Periodic("pricing-reload", self.reload_if_changed, interval_s)
        self._poll.start()

    def stop(self) -> None:
        """Stop polling (idempotent)."""
        if self._poll is not None:
            self._poll.stop()
            self._poll = None
