"""How the elitist search picks the SGS of each decode (sgs_choice.py): the SGS as a gene of each
member (inherited from the parent whose list a child varies, decoded with it the whole run), a share
that follows the parallel children's survival, every decode counted once, and the default's fixed
share untouched where modes vary or slices anneal."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    MaxSchedules,
    QuantumAnnealing,
    check_schedule,
    read_psplib,
)
from llm_cost_tracker.scheduler import annealing as annealing_mod
from llm_cost_tracker.scheduler.sgs_choice import SgsChoice
from tests.scheduler.conftest import TESTDATA
from tests.scheduler.test_parallel_sgs import _delayed

PUBLIC = TESTDATA / "public"
J120 = PUBLIC / "psplib" / "j120" / "j1207_1.sm"
GENE = replace(AnnealingSettings(), sgs_choice="gene")


def test_a_child_is_decoded_with_its_parents_sgs_and_keeps_it_the_whole_run() -> None:
    """Without flips every child's gene is its parent's (the member whose list it varies), also after
    ``parallel_until``; after it, every member with the parallel gene holds a non-delay schedule in
    its population's direction, and some with the serial gene do not (so the check bites). Selection
    then drops the parallel gene (on this instance before the end of the run)."""
    p = read_psplib(J120)
    # the proposals of the default before ``large`` (eighth session): the non-delay check below holds on
    # this run's first late generation, not on every generation of every run (a member keeps its gene
    # when it survives into the other direction's population)
    algo = QuantumAnnealing(replace(GENE, sgs_flip=0.0, parallel=0.5, large=10**6))
    algo.setup(p, MaxSchedules(2000), seed=3)
    assert 0.2 < algo.gene.mean() < 0.8  # the start population draws both
    checked = False
    while algo.has_next():
        parents, before = algo.gene.copy(), algo.schedules_evaluated
        algo.next()
        n = algo.schedules_evaluated - before
        assert np.array_equal(algo._new_gene[:n], parents[:n])
        late = algo.termination.progress(algo) > algo.settings.parallel_until
        if late and not checked and algo._new_gene[:n].any():  # the fixed share would be serial here
            checked = True
            delayed = [_delayed(algo.a, st, algo.modes[0], backward=algo.backward) for st in algo.start]
            assert all(d == 0 for d, g in zip(delayed, algo.gene, strict=True) if g)
            assert any(d > 0 for d, g in zip(delayed, algo.gene, strict=True) if not g)
    assert checked and not algo.gene.any()
    r = algo.result()
    assert r.schedule is not None and check_schedule(p, r.schedule.starts, r.schedule.modes) == []


def test_flips_keep_both_genes_in_play_and_selection_moves_their_share() -> None:
    """With flips (``sgs_flip``) both decoders are used late in the run, and the share of parallel
    genes among the members is what selection made of it, not the start share."""
    algo = QuantumAnnealing(GENE)
    algo.setup(read_psplib(J120), MaxSchedules(3000), seed=5)
    start_share = float(algo.gene.mean())
    late = np.zeros(2, np.int64)  # serial, parallel decodes from half the budget
    while algo.has_next():
        before = algo.schedules_evaluated
        algo.next()
        if algo.termination.progress(algo) > 0.5:
            n = algo.schedules_evaluated - before
            late += np.bincount(algo._new_gene[:n].astype(np.int64), minlength=2)
    assert late.min() > 0
    assert float(algo.gene.mean()) != start_share


@pytest.mark.parametrize("rule", ["gene", "adaptive"])
@pytest.mark.parametrize("budget", [1, 2, 63, 65, 130, 997])
def test_every_decode_counted_once_and_the_budget_spent_exactly(
    rule: str, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serial and parallel decodes each count one schedule: the rows the decoder is given add up to
    the count, and the count stops exactly at the budget."""
    decoded = 0
    decode = annealing_mod.directions.decode

    def spy(order, modes, a, *, backward, parallel=None):  # type: ignore[no-untyped-def]
        nonlocal decoded
        decoded += order.shape[0]
        return decode(order, modes, a, backward=backward, parallel=parallel)

    monkeypatch.setattr(annealing_mod.directions, "decode", spy)
    algo = QuantumAnnealing(replace(AnnealingSettings(), sgs_choice=rule))
    algo.setup(read_psplib(J120), MaxSchedules(budget), seed=2)
    while algo.has_next():
        algo.next()
    assert algo.result().schedules_evaluated == decoded == budget


def test_adaptive_share_follows_survival_within_its_bounds() -> None:
    """Parallel children that survive where serial ones do not raise the share, up to 0.9; the other
    way round lower it, down to 0.1; the draws follow the share."""
    rng = np.random.default_rng(1)
    choice = SgsChoice("adaptive", rng, 0.7, 0.3, 0.1)
    par = np.arange(64) % 2 == 0
    for _ in range(40):
        choice.observe(par, par)
    assert choice.share == pytest.approx(0.9)
    for _ in range(40):
        choice.observe(par, ~par)
    assert choice.share == pytest.approx(0.1)
    choice.rows(0.0, np.zeros(10_000, bool))  # the start population draws the start share
    assert 0.05 < float(choice.rows(0.9, np.zeros(10_000, bool)).mean()) < 0.15  # type: ignore[union-attr]


def test_adaptive_search_moves_its_share_from_the_start() -> None:
    algo = QuantumAnnealing(replace(AnnealingSettings(), sgs_choice="adaptive"))
    algo.setup(read_psplib(J120), MaxSchedules(1500), seed=4)
    while algo.has_next():
        algo.next()
        assert 0.1 <= algo.sgs.share <= 0.9
    assert algo.sgs.share != pytest.approx(0.7)


def test_multi_mode_keeps_the_serial_sgs_and_an_unknown_rule_is_refused() -> None:
    """Multi-mode j30 has no parallel share, so no rule decodes a member in parallel there."""
    algo = QuantumAnnealing(GENE)
    algo.setup(read_psplib(PUBLIC / "psplib" / "mrcpsp-j30" / "j3012_1.mm"), MaxSchedules(400), seed=1)
    while algo.has_next():
        algo.next()
    assert algo.parallel == 0.0 and not algo.gene.any()
    with pytest.raises(ValueError, match="sgs_choice"):
        QuantumAnnealing(replace(AnnealingSettings(), sgs_choice="bandit")).setup(
            read_psplib(J120), MaxSchedules(10), seed=1
        )
