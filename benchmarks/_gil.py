"""Who holds a service child's GIL, and for how long per span: ``py-spy record --gil`` over a timed window.

Why: the all-in-one service is bound by its GIL before its cores (it uses ~1.3 of two cores at full
ingest), so the figure that caps its rate is the GIL-held time per span, not the CPU per span.
py-spy samples the stack of the thread holding the GIL (``--gil``) at ``rate`` Hz without stopping the
process (``--nonblocking``); the share of the window's ticks that found a holder is how busy the GIL was.
A sample is attributed to the thread that held the GIL last, so a thread waking up just after a hand-off
can show for a sample or two: read small shares loosely. Linux, with py-spy installed (the ``bench``
extra); figures only.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

__all__ = ["PARTS", "GilSampler"]

PARTS = (
    ("CallIdentity", "call identity"),
    ("ColumnarPath._identify", "call identity"),
    ("ColumnarPath.prepare", "columnar path: decoding and the stages"),
    ("ColumnarPath.finish", "columnar path: the table"),
    ("SpanTable.concat", "writer: the Arrow table"),
    ("Chain.process", "the other stages (detect .. redact)"),
    ("_decode", "decoding (scan and records)"),
    ("_scan", "decoding (scan and records)"),
    ("_enqueue", "queueing (the ledger, the queue)"),
    ("records_to_arrow", "writer: the Arrow table"),
    ("BatchWriter", "writer: span identity, spend rows, insert call"),
    ("_export", "handlers: the rest of an Export"),
)
"""(frame name part, what it is): a sample goes to the first part any of its frames names."""


def _part(frames: list[str]) -> str:
    for needle, name in PARTS:
        if any(needle in frame for frame in frames):
            return name
    return "other (gRPC's Python, /metrics, ...)"


class GilSampler:
    """Samples the GIL holder of process ``pid`` from :meth:`start` to :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int = 100, keep: Path | None = None) -> None:
        self.pid, self.out, self.rate, self.keep = pid, out, rate, keep
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self.seconds = 0.0

    @staticmethod
    def binary() -> str | None:
        """py-spy beside this interpreter (the venv's, without activating it), else on PATH."""
        beside = Path(sys.executable).parent / "py-spy"
        return str(beside) if beside.exists() else shutil.which("py-spy")

    def start(self) -> None:
        binary = self.binary()
        assert binary is not None
        self._proc = subprocess.Popen(
            [binary, "record", "--gil", "--nonblocking", "--pid", str(self.pid), "--rate", str(self.rate),
             "--format", "raw", "--output", str(self.out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._started = time.perf_counter()

    def stop(self) -> Counter[str]:
        """Samples per part of the window (py-spy writes its file when interrupted)."""
        assert self._proc is not None
        self.seconds = time.perf_counter() - self._started
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=60)
        if self.keep is not None:  # py-spy's folded stacks, for a view by function (or a flame graph)
            shutil.copyfile(self.out, self.keep)
        parts: Counter[str] = Counter()
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [re.sub(r" \(.*\)$", "", frame) for frame in stack.split(";")]
            parts[_part(frames)] += int(count)
        return parts
