"""How fast this machine's CPU runs a fixed piece of Python right now: a probe beside a benchmark's timed window.

Why: on the 2-core machine the benchmarks run on, the same fixed loop took 0.14 s in one second and 0.27 s
in the next, on either core, with nothing else running (thirteenth session: the host's cores change speed;
the VM sees no steal time and no paging). A run's spans/s moves with it, so two runs of the same code read
a fifth or more apart, and a figure from one session cannot be set against another's without knowing how
fast the machine ran. The probe runs a fixed loop for ~2-4 ms ten times a second on a thread of the
benchmark's own process (~3% of a core) and reports the loop's CPU time: its median over a run says
how fast the machine ran during it, and a rate times that time (spans per probe second) compares across runs.
"""

from __future__ import annotations

import statistics
import threading
import time

__all__ = ["SpeedProbe", "probe_once"]

_ITERATIONS = 25_000


def probe_once() -> float:
    """CPU seconds (this thread's) of the fixed loop: ~2.3 ms on this machine at its usual speed."""
    started = time.thread_time()
    total = 0
    for i in range(_ITERATIONS):
        total += i * 7 % 13
    return time.thread_time() - started


class SpeedProbe:
    """Runs :func:`probe_once` every ``interval`` seconds on a thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(probe_once())

    def start(self) -> SpeedProbe:
        self._thread.start()
        return self

    def stop(self) -> float:
        """The median probe time in milliseconds over the window (one probe now if it took none)."""
        self._stop.set()
        self._thread.join()
        if not self.samples:
            self.samples.append(probe_once())
        return statistics.median(self.samples) * 1e3
