"""One daemon thread that runs a job every N seconds until stopped: the catalog's file poll and its sync."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Periodic"]


class Periodic:
    """Runs ``job`` every ``interval_s`` seconds in a daemon thread named ``name``.

    Args:
        name: the thread's name (seen in thread dumps).
        job: what to run; its exceptions are its own business (the jobs here log and count them).
        interval_s: seconds between runs.
        run_first: run once at start instead of waiting a first interval.
    """

    __slots__ = ("_name", "_job", "_interval_s", "_run_first", "_stop", "_thread")

    def __init__(self, name: str, job: Callable[[], object], interval_s: float, run_first: bool = False) -> None:
        self._name, self._job, self._interval_s, self._run_first = name, job, interval_s, run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a no-op while it runs)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            if self._run_first:
                self._job()
            while not self._stop.wait(self._interval_s):
                self._job()

        self._thread = threading.Thread(target=loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (idempotent; a run in progress finishes in the background)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
