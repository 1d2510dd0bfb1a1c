"""Parked batches back into the store, once the reason they were parked is fixed.

The writer parks a batch the store refused for good, or could not take before a shutdown deadline
(``sinks/parking.py``): the spans are kept, as JSON lines, never dropped. This puts them where they
belong, through the same sink and span identity the writer uses, so that a replay is safe to repeat:

- each file is one insert whose deduplication token is the hash of the file's bytes, so an insert that
  landed before a crash is a no-op in ``llm_spans`` and its rollups when the file is replayed again;
- span identity leaves out the spans the store already holds (a batch parked after part of it was
  stored, or spans a collector sent again meanwhile), so nothing is counted twice;
- a file whose spans are stored moves to ``replayed/`` beside it (kept, not deleted: the operator decides
  when it goes); one that fails stays where it is, with the reason reported, and the others go on.

The store's raw table and its rollups (materialized views) get the spans; a running service's
Prometheus counters do not (they count what that process wrote).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.types import Records, SpanRecord

__all__ = ["REPLAYED_DIR", "ParkedFile", "ReplayResult", "inspect", "replay"]

REPLAYED_DIR = "replayed"
"""Where a replayed file goes, beside the parked files (``ParkingLot.files`` does not look inside it)."""


_UNREADABLE = (OSError, ValueError, TypeError, KeyError)
"""What reading a parked file raises when it cannot be read or is not a parked file (``ParkingLot.parse``)."""


def _unreadable(exc: BaseException) -> str:
    return f"unreadable: {type(exc).__name__}: {exc}"[:500]


@dataclass(frozen=True, slots=True)
class ParkedFile:
    """What a parked file holds, as ``parked list`` shows it."""

    path: Path
    spans: int
    error: str
    """Why the first span was parked (the writer records it with every span of the batch)."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One file's replay: ``written`` spans in its insert, ``already_stored`` left out by span identity; ``error``
    is empty when the file was replayed (and moved to ``moved_to``). Spans an earlier replay of the same file
    stored are in the insert again (span identity keeps them, so an interrupted insert can be completed),
    and the file's token makes them a no-op there."""

    path: Path
    spans: int
    written: int = 0
    already_stored: int = 0
    error: str = ""
    moved_to: Path | None = None


def inspect(lot: ParkingLot) -> list[ParkedFile]:
    """The parked files of ``lot`` (its directory and fallbacks) with their span counts and errors; a file
    that does not parse is listed with that as its error and no spans."""
    out = []
    for path in lot.files():
        try:
            records, error = lot.parse(path.read_text(encoding="utf-8"))
        except _UNREADABLE as exc:
            records, error = [], _unreadable(exc)
        out.append(ParkedFile(path, len(records), error))
    return out


def replay(lot: ParkingLot, write: Callable[[list[SpanRecord], str], None],
           first_arrivals: Callable[[Records, str], tuple[Records, int]] | None,
           paths: Sequence[Path] | None = None, dry_run: bool = False) -> list[ReplayResult]:
    """Insert the spans of each parked file (``paths``, or every file of ``lot``), one insert per file.

    Args:
        lot: where the files are.
        write: inserts records under a deduplication token (``ClickHouseSink.write``).
        first_arrivals: span identity (``sinks.identity.FirstArrivals``), or None to write every span.
        paths: the files to replay, in this order (default: all of ``lot``'s, oldest name first).
        dry_run: count what would be written; write and move nothing.
    """
    results = []
    for path in (lot.files() if paths is None else paths):
        try:
            data = path.read_bytes()
            records, _ = lot.parse(data.decode("utf-8"))
        except _UNREADABLE as exc:
            results.append(ReplayResult(path, 0, error=_unreadable(exc)))
            continue
        token = f"lct-parked:{hashlib.sha256(data).hexdigest()[:32]}"  # the same file, the same insert
        try:
            kept, repeats = first_arrivals(records, token) if first_arrivals is not None else (records, 0)
            assert isinstance(kept, list)  # span identity hands SpanRecords back as SpanRecords
            if not dry_run and kept:
                write(kept, token)
        except Exception as exc:  # the store refused it again: the file stays, the others go on
            results.append(ReplayResult(path, len(records), error=f"{type(exc).__name__}: {exc}"[:500]))
            continue
        moved: Path | None = None
        if not dry_run:
            done = path.parent / REPLAYED_DIR
            done.mkdir(exist_ok=True)
            moved = done / path.name
            os.replace(path, moved)
        results.append(ReplayResult(path, len(records), written=len(kept), already_stored=repeats, moved_to=moved))
    return results
