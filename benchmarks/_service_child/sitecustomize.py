"""Loaded by a service child that ``benchmarks/ingest.py`` starts with ``--threads`` or ``--receive-only``
or ``--gc`` (this directory first on its PYTHONPATH; ``_threads.service_env``).

``--threads``: writes each Python thread's OS id and name to ``$LCT_BENCH_THREAD_LOG`` as it starts, so the
benchmark can tell whose CPU time ``/proc/<pid>/task`` shows. OS thread names cannot tell: Python 3.11
does not set them, and chDB renames the thread that runs a query. ``--receive-only``
(``$LCT_BENCH_RECEIVE_ONLY``): ``receive_only.py`` turns the writer's storing off. ``--gc``
(``$LCT_BENCH_GC_LOG``): appends a line per garbage collection to that file (when it ended, its generation, and
the CPU and wall time it took in the thread that ran it), which ``_gc.py`` reads. Benchmark-only: the service
itself never loads this file."""

from __future__ import annotations

import gc
import os
import threading
import time

_PATH = os.environ.get("LCT_BENCH_THREAD_LOG", "")
_LOCK = threading.Lock()


def _log(name: str) -> None:
    with _LOCK, open(_PATH, "a", encoding="utf-8") as out:
        out.write(f"{threading.get_native_id()}\t{name}\n")


if _PATH:
    _log("MainThread")
    _start = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def _logged(self: threading.Thread) -> None:
        _log(self.name)
        _start(self)

    threading.Thread._bootstrap_inner = _logged  # type: ignore[attr-defined]


if os.environ.get("LCT_BENCH_RECEIVE_ONLY") == "1":
    import receive_only  # noqa: F401  (its import is the change)


_GC_PATH = os.environ.get("LCT_BENCH_GC_LOG", "")
_GC_STARTED: list[float] = [0.0, 0.0]


def _collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _GC_STARTED[:] = [time.thread_time(), time.perf_counter()]
        return
    cpu, wall = time.thread_time() - _GC_STARTED[0], time.perf_counter() - _GC_STARTED[1]
    with open(_GC_PATH, "a", encoding="utf-8") as out:
        out.write(f"{time.time():.6f}\t{info['generation']}\t{cpu:.6f}\t{wall:.6f}\n")


if _GC_PATH:
    gc.callbacks.append(_collection)
