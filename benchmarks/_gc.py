"""What the garbage collector cost a service child in a timed window: its collections by generation, their CPU
per span and the longest pause, read from the lines ``_service_child/sitecustomize.py`` writes (``--gc``).

Why a log rather than py-spy: a collection runs inside whatever line allocated the object that set it off, so
py-spy charges it to that line (a 40 ms young collection showed as ``counted_usage``); the collector's own
callbacks say what it cost, exactly, with the thread's CPU clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["GENERATIONS", "GcWindow", "gc_window"]

GENERATIONS = ("young", "middle", "old")


@dataclass(frozen=True, slots=True)
class GcWindow:
    """The collections that ended inside a window: how many per generation, their CPU seconds per generation,
    and the longest wall time one took (the pause every thread waiting for the GIL saw)."""

    counts: tuple[int, int, int]
    cpu: tuple[float, float, float]
    longest: float

    def line(self, spans: int) -> str:
        """One report line: counts and CPU per span by generation, the total and the longest pause."""
        parts = ", ".join(f"{n} {name} ({cpu / spans * 1e6:.2f} us per span)"
                          for name, n, cpu in zip(GENERATIONS, self.counts, self.cpu, strict=True) if n)
        return (f"{sum(self.cpu) / spans * 1e6:.2f} us CPU per span in {sum(self.counts)} collections"
                f"{': ' + parts if parts else ''}; longest pause {self.longest * 1e3:.0f} ms")


def gc_window(log: Path, start: float, end: float) -> GcWindow:
    """The collections logged in ``log`` that ended between the wall-clock times ``start`` and ``end``."""
    counts, cpu = [0, 0, 0], [0.0, 0.0, 0.0]
    longest = 0.0
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    for line in text.splitlines():
        ended, generation, seconds, pause = line.split("\t")
        if not start <= float(ended) <= end:
            continue
        g = int(generation)
        counts[g] += 1
        cpu[g] += float(seconds)
        longest = max(longest, float(pause))
    return GcWindow((counts[0], counts[1], counts[2]), (cpu[0], cpu[1], cpu[2]), longest)
