"""The parts of the elitist search (issue 20): alternating decode directions, peak crossover cut
points, survivor selection, and the search they make: valid schedules, same seed same result, and
an exactly spent budget."""

from __future__ import annotations

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    SolveSettings,
    check_schedule,
    minimize,
    optimize,
    read_batch,
    read_jobshop,
    read_psplib,
)
from llm_cost_tracker.scheduler.directions import decode, justify_once, list_of, reversed_arrays
from llm_cost_tracker.scheduler.operators import exchange, sample_lists, shift
from llm_cost_tracker.scheduler.peak import peak_cuts
from llm_cost_tracker.scheduler.population import survivors
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource, compile_problem
from tests.scheduler.conftest import TESTDATA

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"


def _valid(p: Problem, starts: np.ndarray, modes: np.ndarray) -> None:
    for st, md in zip(starts, modes, strict=True):
        assert check_schedule(p, [int(x) for x in st], [int(x) for x in md]) == []


def test_backward_lists_decode_to_valid_right_justified_schedules_and_justifying_never_hurts() -> None:
    """Lists of a schedule in either direction decode to feasible schedules, and each justification
    pass keeps or shortens the makespan (forward -> right-justified -> left-justified)."""
    p = read_psplib(J120)
    a = compile_problem(p)
    rng = np.random.default_rng(4)
    order = sample_lists(12, a, rng, rng.uniform(0, 2, 12))
    modes = np.zeros((12, a.n), np.int64)
    fwd = decode(order, modes, a, backward=False)
    right, back_lists = justify_once(fwd, modes, a, to_right=True)
    left, _ = justify_once(right, modes, a, to_right=False)
    d = a.dur[np.arange(a.n)[None, :], modes]
    for st in (fwd, right, left):
        _valid(p, st, modes)
        assert st.min(axis=1).tolist() == [0] * 12
    span = [(st + d).max(axis=1) for st in (fwd, right, left)]
    assert (span[1] <= span[0]).all() and (span[2] <= span[1]).all()
    assert (span[2] < span[0]).any()  # on random lists justification does shorten some
    # a backward list is feasible for the reversed graph: every successor comes before its predecessor
    pos = np.argsort(back_lists, axis=1)
    for i, act in enumerate(p.activities):
        for s in act.successors:
            assert (pos[:, s] < pos[:, i]).all()
    # a decoded schedule's own list, in its direction, decodes back to it (what each generation uses)
    assert np.array_equal(decode(list_of(right, modes, a, backward=True), modes, a, backward=True), right)
    assert np.array_equal(decode(list_of(left, modes, a, backward=False), modes, a, backward=False), left)


def test_operators_on_the_reversed_graph_keep_backward_lists_feasible() -> None:
    """Shift and crossover given the reversed arrays produce lists the backward decode accepts."""
    p = read_psplib(J120)
    a = compile_problem(p)
    rng = np.random.default_rng(9)
    modes = np.zeros((16, a.n), np.int64)
    start = decode(sample_lists(16, a, rng, rng.uniform(0, 2, 16)), modes, a, backward=False)
    back = list_of(start, modes, a, backward=True)
    ra = reversed_arrays(a)
    for _ in range(20):
        back, _ = exchange(back, modes, rng.permutation(16), rng, np.ones(16, bool))
        back = shift(back, ra, rng, np.ones(16, bool))
    pos = np.argsort(back, axis=1)
    for i, act in enumerate(p.activities):
        for s in act.successors:
            assert (pos[:, s] < pos[:, i]).all()
    _valid(p, decode(back, modes, a, backward=True), modes)


def test_peak_cuts_bound_the_densest_window() -> None:
    """With a window of half the makespan, the cut points enclose the two busiest slots, counted in
    list order for either direction."""
    acts = tuple(Activity(f"a{i}", (Mode(1, (q,)),)) for i, q in enumerate((1, 2, 2, 1)))
    a = compile_problem(Problem("peak", acts, renewable=(Resource("r", 2),)))
    start = np.array([[0, 1, 2, 3]])
    modes = np.zeros((1, 4), np.int64)
    rng = np.random.default_rng(0)
    fwd = peak_cuts(start, modes, a, rng, backward=False, low=0.5, high=0.5)
    back = peak_cuts(start, modes, a, rng, backward=True, low=0.5, high=0.5)
    assert fwd.tolist() == [[1, 3]]  # activities 1 and 2, after activity 0 in a forward list
    assert back.tolist() == [[1, 3]]  # the same two, after activity 3 in a backward list


def test_survivors_prefer_distinct_schedules_then_better_then_children() -> None:
    """The best distinct schedules survive; a duplicate only fills up; on equal makespans the earlier
    candidate (a child) wins."""
    f = np.array([5.0, 3.0, 3.0, 1.0, 3.0])
    start = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [0, 2]])  # 4 duplicates 1
    modes = np.zeros((5, 2), np.int64)
    assert survivors(f, start, modes, 3).tolist() == [3, 1, 2]
    assert survivors(f, start, modes, 5).tolist() == [3, 1, 2, 0, 4]


@pytest.mark.parametrize(
    "path",
    [J120, PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm", PUBLIC / "jsplib" / "la06"],
)
def test_elitist_search_valid_deterministic_and_on_budget(path: object) -> None:
    """On single-objective instances the default is the elitist search with alternating directions:
    its schedule passes the checker, a seed fixes the result, and the budget is spent exactly."""
    from pathlib import Path

    assert isinstance(path, Path)
    p = read_jobshop(path) if path.parent.name == "jsplib" else read_psplib(path)
    settings = SolveSettings(max_schedules=700, time_limit=None, seed=11)
    r1, r2 = optimize(p, settings), optimize(p, settings)
    assert r1.schedule is not None and r1.schedule == r2.schedule
    assert check_schedule(p, r1.schedule.starts, r1.schedule.modes) == []
    assert r1.schedules_evaluated == r2.schedules_evaluated == 700
    algo = QuantumAnnealing()
    algo.setup(p, MaxSchedules(700), seed=11)
    assert algo.elitist and algo.alternate and algo.pop == AnnealingSettings().population


@pytest.mark.parametrize("budget", [1, 2, 63, 65, 130, 997])
def test_alternating_search_counts_one_schedule_per_decode(budget: int) -> None:
    """Each generation decodes one schedule per member (no justification passes on top) and the run
    stops exactly at the budget, whatever is left for the last generation. From half the budget on
    the two populations hold 32 members each (`shrink_to`), so a generation decodes 32."""
    p = read_psplib(J120)
    algo = QuantumAnnealing()
    algo.setup(p, MaxSchedules(budget), seed=2)
    assert algo.schedules_evaluated == min(budget, 64)
    while algo.has_next():
        before = algo.schedules_evaluated
        members = algo.pop  # the populations halve after a generation, not during one
        algo.next()
        assert algo.schedules_evaluated - before == min(members, budget - before)
    assert algo.result().schedules_evaluated == budget
    assert budget < 200 or algo.pop == 32


def test_populations_halve_at_half_the_budget_keeping_their_best() -> None:
    """Two populations of 64 until progress `shrink_at` (0.5), then each keeps its first 32 members in
    survivor order (distinct schedules first, then the best); with `shrink_to=0` they stay at 64."""
    p = read_psplib(J120)
    algo = QuantumAnnealing()
    algo.setup(p, MaxSchedules(2000), seed=3)
    while algo.pop == 64:
        before_f, before_other = algo.f.copy(), algo.other
        algo.next()
    assert algo.termination.progress(algo) >= 0.5 and algo.pop == 32
    assert 1000 <= algo.schedules_evaluated - 64 < 1000 + 64  # after the first generation from half the budget
    assert algo.other is not None and before_other is not None
    assert all(x.shape[0] == 32 for x in algo.other) and algo.f.shape == (32,) and algo.weights.shape[0] == 32
    assert np.array_equal(algo.other[3], before_f[:32])  # the parents' first 32 in survivor order
    assert algo.other[3].max() <= np.sort(before_f)[40]  # which are among their best
    while algo.has_next():
        algo.next()
    r = algo.result()
    assert r.schedules_evaluated == 2000 and r.schedule is not None
    assert check_schedule(p, r.schedule.starts, r.schedule.modes) == []
    keep = QuantumAnnealing(AnnealingSettings(shrink_to=0))
    keep.setup(p, MaxSchedules(2000), seed=3)
    while keep.has_next():
        keep.next()
    assert keep.pop == 64 and keep.result().schedules_evaluated == 2000


def _origins(algo: QuantumAnnealing, generations: int) -> int:
    """Run ``generations`` generations and count the members that came from the population of the
    generation before (the other direction's) rather than from this generation's children or the
    population two generations back (the same direction's)."""
    history: list[np.ndarray] = []
    mixed = 0
    for g in range(generations):
        algo.next()
        history.append(algo.start.copy())
        if g < 2:
            continue
        same = np.concatenate([algo._new_start, history[g - 2]])
        for row in algo.start:
            mixed += int(not (row == same).all(axis=1).any())
        if algo.bipop:
            assert algo.other is not None and np.array_equal(algo.other[2], history[g - 1])
    return mixed


@pytest.mark.parametrize("path", [J120, PUBLIC / "jsplib" / "la06"])
def test_two_populations_one_per_direction_parents_from_the_other(path: object) -> None:
    """Single-mode problems keep one population per decode direction (`bipop`): after a generation
    the current population holds only that generation's children and the survivors of the same
    direction's population (two generations back), and the other population is the one the parents
    came from. With one population (`bipop=False`) the last generation's schedules, decoded the other
    way, survive among them."""
    from pathlib import Path

    assert isinstance(path, Path)
    p = read_jobshop(path) if path.parent.name == "jsplib" else read_psplib(path)
    two = QuantumAnnealing()
    two.setup(p, MaxSchedules(3000), seed=4)
    assert two.bipop and _origins(two, 12) == 0
    one = QuantumAnnealing(AnnealingSettings(bipop=False))
    one.setup(p, MaxSchedules(3000), seed=4)
    assert not one.bipop and _origins(one, 12) > 0 and one.other is None


def test_multi_mode_instances_and_batches_keep_one_population() -> None:
    """Multi-mode j30 lost 0.02-0.08 points with two populations, and batches run the annealing slices."""
    mm = QuantumAnnealing()
    mm.setup(read_psplib(PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm"), MaxSchedules(500), seed=1)
    batch = QuantumAnnealing()
    batch.setup(read_batch(TESTDATA / "batch.json").problem, MaxSchedules(500), seed=1)
    for algo in (mm, batch):
        algo.next()
        algo.next()
        assert not algo.bipop and algo.other is None


def _moved(child: np.ndarray, base: np.ndarray) -> int:
    """Fewest activities that must be moved to turn ``base`` into ``child`` (n minus their longest
    common subsequence)."""
    n = len(base)
    common = np.zeros((n + 1, n + 1), np.int64)
    for i in range(n):
        for j in range(n):
            same = common[i, j] + 1 if child[i] == base[j] else 0
            common[i + 1, j + 1] = max(same, common[i, j + 1], common[i + 1, j])
    return n - int(common[n, n])


def _moves_per_proposal(path: object, **settings: object) -> list[int]:
    """Activities moved in each mutation-only proposal (no crossover) of one generation after the first."""
    from pathlib import Path

    from llm_cost_tracker.scheduler.directions import list_of as lists

    assert isinstance(path, Path)
    algo = QuantumAnnealing(AnnealingSettings(exchange=0.0, **settings))  # type: ignore[arg-type]
    algo.setup(read_psplib(path), MaxSchedules(5000), seed=3)
    algo.next()
    if algo.alternate:
        base = lists(algo.start, algo.modes, algo.a, backward=not algo.backward)
    else:
        base = algo.order.copy()
    order, _, _ = algo.ask()
    return [_moved(c, b) for c, b in zip(order, base, strict=True)]


def test_single_mode_elitist_proposals_shift_two_activities() -> None:
    """On a single-mode instance the elitist search moves two activities per mutated proposal
    (`shifts`, 2 by default); with `shifts=1` exactly one, as before."""
    j30 = PUBLIC / "psplib" / "j30" / "j3025_2.sm"
    two = _moves_per_proposal(j30)
    assert max(two) == 2 and two.count(2) >= len(two) // 4  # a shift may land where it started
    assert max(_moves_per_proposal(j30, shifts=1)) == 1


def test_multi_mode_and_annealing_slices_keep_one_shift() -> None:
    """Multi-mode proposals also change a mode, and the annealing slices keep their moves: one shift."""
    assert max(_moves_per_proposal(PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm")) <= 1
    j30 = PUBLIC / "psplib" / "j30" / "j3025_2.sm"
    assert max(_moves_per_proposal(j30, selection="metropolis", alternate=False)) <= 1


def test_batches_keep_the_metropolis_search_with_full_justification() -> None:
    """A task batch (costs and deadlines vary) still runs the annealing slices with forward-backward
    improvement: three schedules per proposal, 32 slices."""
    batch = read_batch(TESTDATA / "batch.json")
    algo = QuantumAnnealing()
    algo.setup(batch.problem, MaxSchedules(2000), seed=1)
    assert not algo.elitist and not algo.alternate and algo.pop == 32
    before = algo.schedules_evaluated
    algo.next()
    assert algo.schedules_evaluated - before == 3 * 32
    r = minimize(batch.problem, QuantumAnnealing(), MaxSchedules(500), seed=1)
    assert r.schedule is not None
    assert check_schedule(batch.problem, r.schedule.starts, r.schedule.modes) == []


def test_unknown_selection_is_refused() -> None:
    """A misspelt selection rule fails loudly instead of silently running the annealing slices."""
    with pytest.raises(ValueError, match="selection"):
        QuantumAnnealing(AnnealingSettings(selection="elite")).setup(read_psplib(J120), MaxSchedules(100), seed=1)
