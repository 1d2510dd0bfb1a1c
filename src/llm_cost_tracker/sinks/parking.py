"""Where batches go that the store refused for good: JSON-lines files, never silently dropped.

Parked records keep every field needed to insert them later (``llm-cost-tracker parked replay``).
When the parking directory cannot be written (a full or read-only disk), the lot tries its fallback
directories in order; only when every one fails does :meth:`ParkingLot.park` raise
:class:`ParkingFailed`, and the caller (the batch writer) counts the records as lost, loudly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from llm_cost_tracker.types import Records, SpanRecord, TokenUsage

__all__ = ["ParkingFailed", "ParkingLot", "default_fallbacks"]


class ParkingFailed(OSError):
    """No parking directory (primary or fallback) could take the batch; ``errors`` says why for each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("cannot park the batch anywhere: " + "; ".join(errors))
        self.errors = errors


def default_fallbacks() -> list[Path]:
    """The system temporary directory (``$TMPDIR``, else /tmp): usually writable when the data disk is not."""
    return [Path(tempfile.gettempdir()) / f"llm-cost-tracker-parked-{os.getuid()}"]


class ParkingLot:
    """Appends refused batches to ``<directory>/parked-<time>.jsonl`` with the error that refused them.

    Args:
        directory: the parking directory (``<data_dir>/parked`` in the service).
        fallbacks: directories tried in order when ``directory`` cannot be written.
    """

    def __init__(self, directory: str | Path, fallbacks: Sequence[str | Path] = ()) -> None:
        self.directory = Path(directory)
        self.fallbacks = [Path(f) for f in fallbacks]

    def park(self, records: Records, error: str) -> Path:
        """The file the records were written to; raises :class:`ParkingFailed` when no directory took them."""
        if not isinstance(records, list):
            records = records.to_records()
        errors = []
        for directory in (self.directory, *self.fallbacks):
            try:
                return self._write(directory, records, error)
            except OSError as exc:
                errors.append(f"{directory}: {type(exc).__name__}: {exc.strerror or exc}")
        raise ParkingFailed(errors)

    @staticmethod
    def _write(directory: Path, records: list[SpanRecord], error: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"parked-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{time.time_ns()}.jsonl"
        partial = path.with_suffix(".partial")
        try:
            with partial.open("w", encoding="utf-8") as out:
                for record in records:
                    row = dataclasses.asdict(record)
                    row["_error"] = error
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())  # a full disk shows here, not after we said "parked"
            partial.rename(path)
        except OSError:
            partial.unlink(missing_ok=True)
            raise
        return path

    def load(self, path: str | Path) -> list[SpanRecord]:
        """The records of one parked file."""
        return self.parse(Path(path).read_text(encoding="utf-8"))[0]

    @staticmethod
    def parse(text: str) -> tuple[list[SpanRecord], str]:
        """The records of a parked file's ``text`` and the error they were parked with (the first record's: the
        writer records the batch's with each), "" for an empty file. Raises ValueError (not JSON), TypeError
        or KeyError (not a parked record)."""
        records: list[SpanRecord] = []
        error = ""
        for line in text.splitlines():
            row = json.loads(line)
            if not records:
                error = str(row.get("_error", ""))
            row.pop("_error", None)
            row["usage"] = TokenUsage(**row["usage"])
            records.append(SpanRecord(**row))
        return records, error

    def files(self) -> list[Path]:
        """Parked files in the primary directory and every fallback, oldest name first per directory."""
        out: list[Path] = []
        for directory in (self.directory, *self.fallbacks):
            if directory.is_dir():
                out.extend(sorted(directory.glob("parked-*.jsonl")))
        return out
