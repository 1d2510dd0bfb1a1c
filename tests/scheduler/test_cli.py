"""``llm-cost-tracker schedule solve`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm_cost_tracker.cli import main
from llm_cost_tracker.scheduler import check_schedule, read_jobshop, read_psplib
from tests.scheduler.conftest import REPO, TESTDATA


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["schedule", "solve", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_psplib_json_lists_every_job_with_file_numbering(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON output covers every job (dummies too) by its file number and 1-based mode, and is feasible."""
    code, out, _ = _run(capsys, str(TESTDATA / "tiny.mm"), "--seed", "1", "--max-schedules", "800")
    doc = json.loads(out)
    assert code == 0 and doc["schedules_evaluated"] == 800 and doc["seconds"] >= 0
    assert [a["id"] for a in doc["activities"]] == [1, 2, 3, 4, 5, 6]
    p = read_psplib(TESTDATA / "tiny.mm")
    starts = [a["start"] for a in doc["activities"]]
    modes = [a["mode"] - 1 for a in doc["activities"]]
    assert check_schedule(p, starts, modes) == []
    assert doc["makespan"] == max(s + p.activities[i].modes[modes[i]].duration for i, s in enumerate(starts))


def test_jobshop_json_lists_operations_zero_based(capsys: pytest.CaptureFixture[str]) -> None:
    """Job-shop output has one operation per (job, index) with its machine and a feasible start."""
    code, out, _ = _run(capsys, str(TESTDATA / "tiny.jsp"), "--jobshop", "--seed", "2")
    doc = json.loads(out)
    assert code == 0
    ops = doc["operations"]
    assert {(o["job"], o["index"]) for o in ops} == {(j, k) for j in range(3) for k in range(3)}
    assert ops[0] == {"job": 0, "index": 0, "machine": 0, "start": ops[0]["start"]}
    p = read_jobshop(TESTDATA / "tiny.jsp")
    assert check_schedule(p, [o["start"] for o in ops], [0] * 9) == []


def test_batch_json_has_schedule_and_front(capsys: pytest.CaptureFixture[str]) -> None:
    """A task batch prints the chosen per-job plan and the Pareto front."""
    code, out, _ = _run(capsys, str(TESTDATA / "batch.json"), "--seed", "3", "--max-schedules", "1500")
    doc = json.loads(out)
    assert code == 0 and {j["id"] for j in doc["schedule"]["jobs"]} == {"extract", "summarize", "eval", "grade", "report"}
    assert doc["pareto_front"] and doc["schedule"]["cost_usd"] <= 5.0 and "pick_rule" in doc


def test_table_format_prints_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """The table format prints a header line and one row per activity."""
    code, out, _ = _run(capsys, str(TESTDATA / "tiny.sm"), "--format", "table", "--seed", "1")
    assert code == 0 and out.splitlines()[0].startswith("tiny: makespan 9") and len(out.splitlines()) == 8


def test_infeasible_instance_exits_two_with_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    """An instance with no feasible mode combination exits 2 and says it is infeasible."""
    code, out, err = _run(capsys, str(TESTDATA / "infeasible.mm"))
    assert code == 2 and out == "" and err.startswith("infeasible:")


def test_malformed_file_exits_two_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupted PSPLIB row makes the command exit 2 with file:line in the message."""
    lines = (TESTDATA / "tiny.sm").read_text().splitlines()
    lines[25] = "   2      1     3    two"
    bad = tmp_path / "bad.sm"
    bad.write_text("\n".join(lines))
    code, _, err = _run(capsys, str(bad))
    assert code == 2 and f"{bad}:26" in err


def test_missing_file_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is an input error, exit 2."""
    code, _, err = _run(capsys, "/nonexistent/x.sm")
    assert code == 2 and "cannot read" in err


def test_console_script_subprocess_round_trip() -> None:
    """The installed console script solves a file in a separate process and prints JSON."""
    exe = REPO / ".venv" / "bin" / "llm-cost-tracker"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "llm_cost_tracker.cli"]
    proc = subprocess.run(
        [*cmd, "schedule", "solve", str(TESTDATA / "small.sm"), "--seed", "4", "--max-schedules", "500"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schedules_evaluated"] == 500
