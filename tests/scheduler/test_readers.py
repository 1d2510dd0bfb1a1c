"""Readers: PSPLIB .sm/.mm, JSPLIB job shop, and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_cost_tracker.scheduler import ParseError, parse_jobshop, parse_psplib, read_jobshop, read_psplib
from tests.scheduler.conftest import TESTDATA


def test_sm_reader_builds_activities_successors_and_capacities() -> None:
    """A single-mode file yields 1-based ids, 0-based successor indices and the stated capacity."""
    p = read_psplib(TESTDATA / "tiny.sm")
    assert [a.id for a in p.activities] == ["1", "2", "3", "4", "5", "6"]
    assert p.activities[0].successors == (1, 2)
    assert p.activities[1].modes[0].duration == 3 and p.activities[1].modes[0].renewable == (2,)
    assert [r.capacity for r in p.renewable] == [4] and p.nonrenewable == ()


def test_mm_reader_reads_every_mode_and_nonrenewable_demand() -> None:
    """Continuation rows of a multi-mode file become further modes with their N demands."""
    p = read_psplib(TESTDATA / "tiny.mm")
    modes = p.activities[1].modes
    assert [(m.duration, m.renewable, m.nonrenewable) for m in modes] == [(2, (2,), (4,)), (5, (2,), (1,))]
    assert [r.capacity for r in p.nonrenewable] == [10]


def test_psplib_error_names_the_line_of_a_bad_row() -> None:
    """A non-numeric token in the requests section is reported with its line number."""
    lines = (TESTDATA / "tiny.sm").read_text().splitlines()
    bad_no = next(i for i, line in enumerate(lines) if line.strip().startswith("3      1")) + 1
    lines[bad_no - 1] = "   3      1     x    3"
    with pytest.raises(ParseError) as err:
        parse_psplib("\n".join(lines), source="bad.sm")
    assert err.value.line == bad_no and f"bad.sm:{bad_no}" in str(err.value)


def test_psplib_error_for_unknown_successor_names_its_line() -> None:
    """A successor beyond the last job is reported at the precedence row that names it."""
    text = (TESTDATA / "tiny.sm").read_text().replace("   5        1          1         6", "   5        1          1         9")
    with pytest.raises(ParseError, match="unknown successor 9") as err:
        parse_psplib(text)
    assert err.value.line is not None and "   5        1" in text.splitlines()[err.value.line - 1]


def test_jobshop_reader_chains_operations_on_unit_machines() -> None:
    """Each operation needs one unit of its machine and precedes the next operation of its job."""
    p = read_jobshop(TESTDATA / "tiny.jsp")
    assert p.n == 9 and [r.capacity for r in p.renewable] == [1, 1, 1]
    first = p.activities[0]
    assert first.id == "0.0" and first.modes[0].renewable == (1, 0, 0) and first.successors == (1,)
    assert p.activities[2].successors == ()


def test_jobshop_error_names_the_short_job_line() -> None:
    """A job line with too few pairs is reported with its own line number."""
    with pytest.raises(ParseError, match=r"x\.jsp:4: job 1") as err:
        parse_jobshop("# c\n2 2\n0 1 1 2\n0 1\n", source="x.jsp")
    assert err.value.line == 4


def test_public_j30_instance_parses(bench_data: Path) -> None:
    """A PSPLIB j30 file from the benchmark set parses into 32 activities and 4 resources."""
    p = read_psplib(bench_data / "psplib" / "j30" / "j301_1.sm")
    assert p.n == 32 and len(p.renewable) == 4
