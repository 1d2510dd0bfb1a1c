"""Scratch files chDB reads (a batch's rows, span identity's keys) and the sweep of those left by a killed process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest

from llm_cost_tracker.storage import scratch


def _dead_pid() -> int:
    """The id of a process that ran and has exited (reaped, so no process holds it)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    pid = int(child.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def _aged(path: Path, seconds: float) -> Path:
    path.write_bytes(b"x" * 10)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_a_scratch_file_names_its_process_and_holds_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    table = pa.table({"tenant": ["a", "b"], "trace_id": ["t1", "t2"]})
    path = Path(scratch.arrow_file(table, "keys"))
    assert path.parent == tmp_path and path.name.startswith(f"lct-keys-{os.getpid()}-") and path.suffix == ".arrow"
    with pa.OSFile(str(path)) as source:
        assert pa.ipc.open_file(source).read_all().equals(table)
    with pytest.raises(ValueError, match="kind"):
        scratch.scratch_file("other", ".arrow")


def test_sweep_removes_only_old_files_of_processes_that_no_longer_run(tmp_path: Path) -> None:
    dead = _dead_pid()
    gone = [_aged(tmp_path / f"lct-batch-{dead}-abc.arrow", 3600), _aged(tmp_path / f"lct-keys-{dead}-x1.arrow", 3600),
            _aged(tmp_path / f"lct-batch-{dead}-q.pb", 3600)]
    kept = [
        _aged(tmp_path / f"lct-batch-{dead}-fresh.arrow", 10),  # a dead id, but young: maybe another namespace's
        _aged(tmp_path / f"lct-batch-{os.getpid()}-mine.arrow", 3600),  # this process's
        _aged(tmp_path / "lct-batch-1-init.arrow", 3600),  # a live process's (pid 1 always runs)
        _aged(tmp_path / f"lct-schema-{dead}-0123.proto", 3600),  # shared schema files are not scratch
        _aged(tmp_path / "lct-batch-abcdef.arrow", 3600),  # no process id in the name (older versions)
        _aged(tmp_path / f"other-{dead}.arrow", 3600),
    ]
    assert scratch.sweep(str(tmp_path)) == len(gone)
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert scratch.sweep(str(tmp_path), min_age_seconds=0) == 1  # now the young one too
    assert scratch.sweep(str(tmp_path / "missing")) == 0


def test_an_embedded_sink_sweeps_when_it_starts(store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer on the embedded store clears what a killed predecessor left (a batch file of tens of MB)."""
    from llm_cost_tracker.sinks.clickhouse import ClickHouseSink

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = _aged(tmp_path / f"lct-batch-{_dead_pid()}-killed.arrow", 3600)
    ClickHouseSink(store)
    assert not left.exists()
