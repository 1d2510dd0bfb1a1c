"""The parallel SGS (non-delay schedules) and where the elitist search uses it: its decodes early in
a single-mode run, the serial SGS after ``parallel_until``, never on multi-mode instances or batches."""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    check_schedule,
    read_batch,
    read_jobshop,
    read_psplib,
)
from llm_cost_tracker.scheduler.directions import decode, reversed_arrays
from llm_cost_tracker.scheduler.operators import sample_lists
from llm_cost_tracker.scheduler.problem import Arrays, IntArray, compile_problem
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"


def _delayed(a: Arrays, start: IntArray, modes: IntArray, *, backward: bool) -> int:
    """Activities of one schedule that could have started at an earlier slot, in the decode's own
    time direction: their predecessors done and a free slot of every resource they need. A
    non-delay schedule has none; the parallel SGS only builds those."""
    cols = np.arange(a.n)
    d = a.dur[cols, modes]
    s = (start + d).max() - (start + d) if backward else start
    preds = a.succ_pad if backward else a.pred_pad
    dem = a.dem[cols, modes]
    use = np.zeros((a.cap.shape[0], int((s + d).max()) + 1), np.int64)
    for j in range(a.n):
        use[:, s[j]:s[j] + d[j]] += dem[j][:, None]
    late = 0
    for j in range(a.n):
        ready = max((int(s[q] + d[q]) for q in preds[j] if q < a.n), default=0)
        free = [t for t in range(ready, int(s[j])) if d[j] == 0 or (use[:, t] + dem[j] <= a.cap).all()]
        late += bool(free)
    return late


def test_parallel_decodes_are_feasible_non_delay_and_differ_from_serial() -> None:
    """Random lists, both directions, a project and a job shop: every parallel decode passes the checker
    and has no delayed activity; serial decodes of the same lists do have delays (so the check bites)."""
    rng = np.random.default_rng(5)
    for p in (read_psplib(J120), read_jobshop(PUBLIC / "jsplib" / "la06")):
        a = compile_problem(p)
        modes = np.zeros((8, a.n), np.int64)
        for backward in (False, True):
            lists = sample_lists(8, reversed_arrays(a) if backward else a, rng, rng.uniform(0, 2, 8))
            par = decode(lists, modes, a, backward=backward, parallel=np.ones(8, bool))
            ser = decode(lists, modes, a, backward=backward)
            for st in par:
                assert check_schedule(p, [int(x) for x in st], [0] * a.n) == []
                assert _delayed(a, st, modes[0], backward=backward) == 0
            assert sum(_delayed(a, st, modes[0], backward=backward) for st in ser) > 0
            mixed = decode(lists, modes, a, backward=backward, parallel=np.arange(8) % 2 == 0)
            assert (mixed[0::2] == par[0::2]).all() and (mixed[1::2] == ser[1::2]).all()


def _delays_per_generation(settings: AnnealingSettings, budget: int) -> list[int]:
    """Delayed activities summed over each generation's decodes (the start population first)."""
    algo = QuantumAnnealing(settings)
    algo.setup(read_psplib(J120), MaxSchedules(budget), seed=7)

    def count() -> int:
        return sum(_delayed(algo.a, st, algo.modes[0], backward=algo.backward) for st in algo._new_start)

    out = [count()]
    while algo.has_next():
        algo.next()
        out.append(count())
    return out


def test_single_mode_elitist_search_decodes_in_parallel_until_its_progress_then_serially() -> None:
    """With every early decode parallel, the generations before ``parallel_until`` (0.5 of 640
    schedules: the start population and 4 generations) hold no delayed activity, the ones after do;
    with ``parallel=0`` (the serial SGS only) the early ones have delays too."""
    early = _delays_per_generation(AnnealingSettings(parallel=1.0, parallel_until=0.5, shrink_to=0), 640)
    assert len(early) == 10 and early[:5] == [0] * 5 and sum(early[5:]) > 0
    assert sum(_delays_per_generation(AnnealingSettings(parallel=0.0, shrink_to=0), 640)[:5]) > 0


def test_multi_mode_instances_and_batches_never_decode_in_parallel() -> None:
    """Multi-mode j30 (it lost 0.16 points with it) and task batches (annealing slices) keep the serial
    SGS, so their plans are those of before; single-mode PSPLIB and job shop get the default share."""
    def share(problem: object) -> float:
        algo = QuantumAnnealing()
        algo.setup(problem, MaxSchedules(100), seed=1)  # type: ignore[arg-type]
        return algo.parallel

    assert share(read_psplib(PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm")) == 0.0
    assert share(read_batch(TESTDATA / "batch.json").problem) == 0.0
    assert share(read_psplib(J120)) == share(read_jobshop(PUBLIC / "jsplib" / "la06")) == 0.7


def test_compiled_parallel_loop_matches_its_python_source() -> None:
    """The numba-compiled loop and its plain-Python source give the same start times (so the source
    is what runs), on a project and a job shop, forward and backward."""
    from llm_cost_tracker.scheduler.parallel_sgs import _decode

    rng = np.random.default_rng(9)
    for p in (read_psplib(J120), read_jobshop(PUBLIC / "jsplib" / "la06")):
        a = compile_problem(p)
        lists = sample_lists(4, a, rng, np.ones(4))
        modes = np.zeros((4, a.n), np.int64)
        for preds in (a.pred_pad, a.succ_pad):
            order = lists if preds is a.pred_pad else sample_lists(4, reversed_arrays(a), rng, np.ones(4))
            out = [np.zeros(order.shape, np.int64) for _ in range(2)]
            _decode(order, modes, a.dur, a.dem, preds, a.cap, out[0])
            _decode.py_func(order, modes, a.dur, a.dem, preds, a.cap, out[1])
            assert (out[0] == out[1]).all()
