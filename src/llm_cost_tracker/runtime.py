"""Process-wide settings of a long-running service: the garbage collector's pace and the C allocator's mmap threshold.

Every Export allocates a few objects per attribute of every span (dicts, strings, records) that live
until their batch is written, and the call-identity window keeps up to 100,000 carriers. With
CPython's default thresholds (a young collection every 700 allocations, a full one as the old
generation grows by a quarter) the collector walked those objects again and again: measured at about
10 us of CPU per span, a tenth of the ingest path (``benchmarks/stages.py``). The service's objects
are not cyclic, and reference counting frees them; the collector only needs to run now and then.
"""

from __future__ import annotations

import ctypes
import gc

__all__ = ["GC_THRESHOLDS", "MMAP_THRESHOLD", "tune_gc", "tune_malloc"]

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


MMAP_THRESHOLD = 4 << 20
"""Bytes from which glibc's ``malloc`` serves a block with an ``mmap`` of its own, handed back to the system when
it is freed: fixed at 4 MiB, where glibc's default moves.

Why: by default glibc raises the threshold to the size of every mmapped block that is freed (up to 32 MiB). After
the first big request, blocks that size (a 13 MiB request's ``bytes``, the wire scan's tables for it, numpy's
arrays) come from the heaps of the threads that asked for them, and a heap keeps what is freed below a block
still in use. Under ``benchmarks/attack.py``'s ``big_requests`` (six clients of 13 MiB Exports) the service
peaked at 1,055-1,241 MiB with the moving threshold, over the probe's 1 GiB, and at 850-886 MiB with 4 MiB
(833-881 with 1 MiB, 939-965 with 8 MiB; docs/hardening.md). 1 MiB cost the usual ingest ~5% of its CPU (every
request's scan tables then mapped and faulted in afresh: ``ingest.py --baseline``, 0.934x the rate, 1.054x the
CPU per span); 4 MiB left it as it was (1.011x, 1.002x, peak RSS 0.988x), and the Kafka path and the scheduler
within their noise. glibc's trim threshold then stays at 128 KiB: 8 MiB, what glibc keeps beside a 4 MiB threshold
it moved itself, raised the probe's peak to 875-966 MiB for no measured gain. chDB and pyarrow allocate with
jemalloc, which this does not touch."""
_M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number for the threshold (glibc's ``malloc.h``)."""


def tune_malloc(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (``mallopt``, which also turns off its moving it); False
    where the C library has no ``mallopt`` or refuses (not glibc): nothing is changed then. Called once per
    service process, before its start."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no such symbol; or no process handle (Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold) == 1)
