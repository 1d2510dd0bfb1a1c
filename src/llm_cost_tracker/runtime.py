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

GC_THRESHOLDS = (250_000, 20, 100)
"""(young, middle, old): a young collection per 250,000 net allocations instead of 700; the same ratios above
it.

Why 250,000: what sets off a young collection is the count of container objects allocated and not yet freed,
and it restarts from zero at each collection. A request's records (a ``SpanRecord`` and its ``TokenUsage`` per
span, and call identity's carriers) live until their batch is written, and frees below zero are not counted:
at 50,000 the count was crossed once per written batch (~2.5 live objects per span, 20,000 spans), and each
time the collector walked a batch of live records for nothing (30-50 ms of the GIL), and every twentieth
time all of them in the middle generation (110-120 ms). At 250,000, above what a batch in flight holds, it is
crossed a few times a run: 2.0 -> 0.2 us of CPU per span and the longest pause 113-120 -> 53-70 ms in
``benchmarks/ingest.py --gc`` (docs/performance.md). What is not freed by reference counting (cycles, rare
here) still counts towards the threshold, so it is collected once 250,000 such objects have piled up, at
the latest."""


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, catalog, settings: never collected again) and slow the
    collector's pace for what follows. Called once per service process, after its start."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
