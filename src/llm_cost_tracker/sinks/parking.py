"""Where batches go that the store refused for good: JSON-lines files, never silently dropped.

Parked records keep every field needed to insert them later (``llm-cost-tracker parked replay``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from llm_cost_tracker.types import SpanRecord, TokenUsage


class ParkingLot:
    """Appends refused batches to ``<directory>/parked-<time>.jsonl`` with the error that refused them."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def park(self, records: list[SpanRecord], error: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"parked-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{time.time_ns()}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for record in records:
                row = dataclasses.asdict(record)
                row["_error"] = error
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    def load(self, path: str | Path) -> list[SpanRecord]:
        """The records of one parked file."""
        records = []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.pop("_error", None)
            row["usage"] = TokenUsage(**row["usage"])
            records.append(SpanRecord(**row))
        return records

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("parked-*.jsonl")) if self.directory.is_dir() else []
