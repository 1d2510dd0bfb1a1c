"""The running service's side of catalog freshness: periodic sync, hot reload and the freshness metrics.

``CatalogSyncer`` fetches ``[pricing] sync_url`` every ``sync_interval_seconds`` in a daemon thread,
records a new layer when prices changed (``_sync.sync``; a refused change is logged and counted, never
applied) and reloads the catalog holder so new spans are priced with it. ``export_catalog_metrics``
adds ``llm_price_catalog_age_seconds`` (how old the prices in force are) and ``llm_price_syncs_total``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from llm_cost_tracker.pricing._model import CatalogError
from llm_cost_tracker.pricing._periodic import Periodic
from llm_cost_tracker.pricing._settings import PricingSettings
from llm_cost_tracker.pricing._sync import sync

__all__ = ["CatalogSyncer", "export_catalog_metrics"]

_log = structlog.get_logger("llm_cost_tracker.pricing")


def export_catalog_metrics(registry: CollectorRegistry, holder: Any,
                           clock: Callable[[], float] = time.time) -> Counter:
    """Register the catalog-age gauge (read from ``holder.current.as_of_ns`` at scrape) and the sync counter."""
    gauge = Gauge("llm_price_catalog_age_seconds", "Seconds since the prices in force were last known current "
                  "(newest recorded price date or last successful sync check).", registry=registry)

    def age() -> float:
        as_of = getattr(getattr(holder, "current", None), "as_of_ns", None)
        return float("nan") if as_of is None else max(clock() - as_of / 1e9, 0.0)

    gauge.set_function(age)
    return Counter("llm_price_syncs", "Catalog sync attempts by result (changed, unchanged, refused, failed).",
                   ("result",), registry=registry)


class CatalogSyncer:
    """Syncs the catalog from ``settings.sync_url`` on an interval and reloads ``holder`` on a change.

    Args:
        holder: the :class:`ReloadingCatalog` in force (its ``data_dir`` receives the layers).
        settings: the ``[pricing]`` settings (URL, interval, change factor).
        counter: ``llm_price_syncs_total`` (from :func:`export_catalog_metrics`).
    """

    def __init__(self, holder: Any, settings: PricingSettings, counter: Counter | None = None) -> None:
        self.holder = holder
        self.settings = settings
        self.counter = counter
        self._loop: Periodic | None = None

    def run_once(self) -> str:
        """One sync: ``changed``, ``unchanged``, ``refused`` or ``failed`` (logged, counted, never raised)."""
        data_dir = self.holder.data_dir
        try:
            result = sync(self.settings.sync_url, Path(data_dir), self.holder.current.entries,
                          max_factor=self.settings.sync_max_change_factor)
        except (CatalogError, OSError, ValueError) as exc:
            outcome = "failed"
            _log.error("pricing.sync_failed", source=self.settings.sync_url, error=str(exc)[:500])
        else:
            if result.refused:
                outcome = "refused"
                refused = [c for c in result.changes if c.kind == "refused"]
                _log.error("pricing.sync_refused", source=self.settings.sync_url, refused=len(refused),
                           first=f"{refused[0].key}: {'; '.join(refused[0].details)}"[:500],
                           hint="run `llm-cost-tracker pricing diff` and `pricing sync --accept-changes` by hand")
            else:
                outcome = "changed" if result.layer is not None else "unchanged"
                self.holder.reload()  # also for "unchanged": the new check time makes the catalog current
                if result.layer is not None:
                    _log.info("pricing.synced", source=self.settings.sync_url, changes=len(result.changes),
                              layer=result.layer.name)
        if self.counter is not None:
            self.counter.labels(outcome).inc()
        return outcome

    def start(self) -> None:
        """Sync now and then every ``sync_interval_seconds`` in a daemon thread."""
        if self._loop is not None or not self.settings.sync_url:
            return
        self._loop = Periodic("pricing-sync", self.run_once, self.settings.sync_interval_seconds, run_first=True)
        self._loop.start()

    def stop(self) -> None:
        """Stop the loop (idempotent; a sync in progress finishes in the background)."""
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
