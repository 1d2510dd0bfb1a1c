"""Where a service child's CPU goes, by thread: ``/proc/<pid>/task`` read at the start and the end of a
timed window, each thread's time named by what it runs (``_service_child/sitecustomize.py`` logs the Python
threads' ids; chDB's and gRPC's own threads keep their OS names). Linux only; figures only."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

__all__ = ["ROLES", "ThreadClock", "service_env"]

ROLES = (
    ("otlp", "gRPC handlers: decode, stages, queue (Python)"),
    ("batch-writer", "batch writer: Arrow, span identity, spend rows, chDB insert in its thread"),
    ("MainThread", "main thread"),
)
_TICK = os.sysconf("SC_CLK_TCK")


def service_env(log: Path | None = None, receive_only: bool = False, gc_log: Path | None = None) -> dict[str, str]:
    """The environment that makes a service child log its Python threads to ``log``, with ``receive_only``
    commit its batches without storing them, and log its garbage collections to ``gc_log``
    (``_service_child/``)."""
    here = str(Path(__file__).resolve().parent / "_service_child")
    path = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": here + (os.pathsep + path if path else "")}
    if log is not None:
        env["LCT_BENCH_THREAD_LOG"] = str(log)
    if receive_only:
        env["LCT_BENCH_RECEIVE_ONLY"] = "1"
    if gc_log is not None:
        env["LCT_BENCH_GC_LOG"] = str(gc_log)
    return env


def _role(python_name: str | None, os_name: str) -> str:
    if python_name is None:
        return f"native threads ({os_name}: chDB's pools and merges, gRPC core)" if os_name else "native threads"
    for prefix, role in ROLES:
        if python_name.startswith(prefix):
            return role
    return "other Python threads"


class ThreadClock:
    """CPU seconds per thread of process ``pid``, sampled until :meth:`stop`; a thread that exits keeps
    its last sampled time (sampled every ``interval`` seconds, so a short-lived thread may be missed)."""

    def __init__(self, pid: int, log: Path, interval: float = 0.25) -> None:
        self._pid, self._log, self._interval = pid, log, interval
        self._seen: dict[int, tuple[str, float]] = {}
        self._marks: list[dict[int, tuple[str, float]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="thread-clock", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        task = Path(f"/proc/{self._pid}/task")
        try:
            tids = os.listdir(task)
        except OSError:
            return
        for tid in tids:
            try:
                stat = (task / tid / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            with self._lock:
                self._seen[int(tid)] = (stat[stat.index("(") + 1:stat.rindex(")")],
                                        (int(fields[11]) + int(fields[12])) / _TICK)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def mark(self) -> None:
        """A point of the window (call at its start and at its end)."""
        self._sample()
        with self._lock:
            self._marks.append(dict(self._seen))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def by_role(self) -> Counter[str]:
        """CPU seconds per role between the first and the last mark."""
        names: dict[int, str] = {}
        if self._log.exists():
            for line in self._log.read_text(encoding="utf-8").splitlines():
                tid, _, name = line.partition("\t")
                names[int(tid)] = name
        first, last = self._marks[0], self._marks[-1]
        spent: Counter[str] = Counter()
        for tid, (os_name, cpu) in last.items():
            spent[_role(names.get(tid), os_name)] += cpu - first.get(tid, (os_name, 0.0))[1]
        return spent
