"""Reader for PSPLIB ``.sm`` (single-mode) and ``.mm`` (multi-mode) files.

Both formats share one layout (Kolisch & Sprecher 1997); ``.mm`` rows of a job after the first mode
omit the job number. Errors carry the line number so a broken file can be fixed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from llm_cost_tracker.scheduler.errors import ParseError
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource

_COUNT = re.compile(r"^\s*-\s*(renewable|nonrenewable|doubly constrained)\s*:\s*(\d+)")


def read_psplib(path: str | Path) -> Problem:
    """Parse a PSPLIB file from disk."""
    p = Path(path)
    return parse_psplib(p.read_text(encoding="utf-8", errors="replace"), source=str(p), name=p.stem)


def parse_psplib(text: str, source: str = "<psplib>", name: str = "psplib") -> Problem:
    """Parse PSPLIB text into a :class:`Problem` (job numbers become string ids "1".."n")."""
    lines = text.splitlines()
    counts: dict[str, int] = {}
    for no, line in enumerate(lines, 1):
        m = _COUNT.match(line)
        if m:
            counts[m.group(1)] = int(m.group(2))
            if m.group(1) == "doubly constrained" and int(m.group(2)) > 0:
                raise ParseError(source, no, "doubly constrained resources are not supported")
    if "renewable" not in counts:
        raise ParseError(source, None, "no 'renewable' resource count line: not a PSPLIB file")
    n_ren, n_non = counts["renewable"], counts.get("nonrenewable", 0)

    prec_at = _section(lines, "PRECEDENCE RELATIONS", source)
    succ: dict[int, tuple[int, list[int], int]] = {}
    for no in range(prec_at + 2, len(lines)):
        line = lines[no]
        if line.startswith("*"):
            break
        toks = _ints(line, source, no + 1)
        if not toks:
            continue
        if len(toks) < 3 or len(toks) != 3 + toks[2]:
            raise ParseError(source, no + 1, "expected 'job #modes #successors successors...'")
        succ[toks[0]] = (toks[1], toks[3:], no + 1)
    if not succ:
        raise ParseError(source, prec_at + 1, "empty PRECEDENCE RELATIONS section")
    n = max(succ)
    if sorted(succ) != list(range(1, n + 1)):
        raise ParseError(source, prec_at + 1, "jobs must be numbered 1..n without gaps")

    req_at = _section(lines, "REQUESTS/DURATIONS", source)
    modes: dict[int, list[Mode]] = {j: [] for j in succ}
    job = 0
    width = 2 + n_ren + n_non
    for no in range(req_at + 3, len(lines)):
        line = lines[no]
        if line.startswith("*"):
            break
        toks = _ints(line, source, no + 1)
        if not toks:
            continue
        if len(toks) == width + 1:
            job, toks = toks[0], toks[1:]
        elif len(toks) != width or job == 0:
            raise ParseError(source, no + 1, f"expected {width + 1} numbers (job mode duration demands)")
        if job not in modes:
            raise ParseError(source, no + 1, f"job {job} is not in PRECEDENCE RELATIONS")
        if toks[0] != len(modes[job]) + 1:
            raise ParseError(source, no + 1, f"job {job}: mode {toks[0]} out of sequence")
        modes[job].append(
            Mode(
                duration=toks[1],
                renewable=tuple(toks[2 : 2 + n_ren]),
                nonrenewable=tuple(toks[2 + n_ren :]),
                label=str(toks[0]),
            )
        )

    avail_at = _section(lines, "RESOURCEAVAILABILITIES", source)
    names_line = lines[avail_at + 1] if avail_at + 1 < len(lines) else ""
    names = re.findall(r"[A-Z]\s*\d+", names_line)
    caps = _ints(lines[avail_at + 2] if avail_at + 2 < len(lines) else "", source, avail_at + 3)
    if len(caps) != n_ren + n_non:
        raise ParseError(source, avail_at + 3, f"expected {n_ren + n_non} resource availabilities")
    if len(names) != len(caps):
        names = [f"R {i + 1}" for i in range(n_ren)] + [f"N {i + 1}" for i in range(n_non)]

    acts: list[Activity] = []
    for j in range(1, n + 1):
        n_modes, succs, line_no = succ[j]
        if len(modes[j]) != n_modes:
            raise ParseError(source, line_no, f"job {j} declares {n_modes} modes but has {len(modes[j])}")
        for s in succs:
            if not 1 <= s <= n:
                raise ParseError(source, line_no, f"job {j} has unknown successor {s}")
        acts.append(Activity(id=str(j), modes=tuple(modes[j]), successors=tuple(s - 1 for s in succs)))
    try:
        return Problem(
            name=name,
            activities=tuple(acts),
            renewable=tuple(Resource(names[i].replace(" ", ""), caps[i]) for i in range(n_ren)),
            nonrenewable=tuple(
                Resource(names[n_ren + i].replace(" ", ""), caps[n_ren + i]) for i in range(n_non)
            ),
            meta=(("format", "psplib"),),
        )
    except ValueError as exc:
        raise ParseError(source, prec_at + 1, str(exc)) from exc


def _section(lines: list[str], title: str, source: str) -> int:
    for i, line in enumerate(lines):
        if line.strip().upper().startswith(title):
            return i
    raise ParseError(source, None, f"missing section {title}")


def _ints(line: str, source: str, no: int) -> list[int]:
    try:
        return [int(t) for t in line.split()]
    except ValueError:
        raise ParseError(source, no, f"expected integers, got {line.strip()!r}") from None
