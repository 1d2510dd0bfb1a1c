"""Process-wide settings of a long-running service: the garbage collector's pace.

Every Export allocates a few objects per attribute of every span (dicts, strings, records) that live
until their batch is written, and the call-identity window keeps up to 100,000 carriers. With
CPython's default thresholds (a young collection every 700 allocations, a full one as the old
generation grows by a quarter) the collector walked those objects again and again: measured at about
10 us of CPU per span, a tenth of the ingest path (``benchmarks/stages.py``). The service's objects
are not cyclic, and reference counting frees them; the collector only needs to run now and then.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (50_000, 20, 100)
"""(young, middle, old): a young collection per 50,000 net allocations instead of 700; the same ratios
above it, so cycles (rare here) are still collected within seconds under load."""


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, catalog, settings: never collected again) and slow the
    collector's pace for what follows. Called once per service process, after its start."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
