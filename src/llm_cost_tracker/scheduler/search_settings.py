"""The search's settings: one frozen record of every knob of the annealing slices and the elitist search.

Apart from ``annealing.py`` so that the solver's loop and what it can be told stay readable on their own;
``solve.SolveSettings`` carries one of these.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AnnealingSettings"]


@dataclass(frozen=True, slots=True)
class AnnealingSettings:
    """Search parameters; the defaults are what the benchmark in docs/scheduler.md measured."""

    replicas: int = 32
    coupling: float = 0.0
    """Strength of the inter-slice coupling energy. Off by default: at 10 it changed nothing measurable
    on j30 (docs/scheduler.md), so per issue 7 it is kept only as an option."""
    exchange: float = 0.8
    """Probability that a slice proposes a segment copied from another slice (0 = never). This is the
    slice coupling that measurably helps, so it is on by default (0.8 measured better than 0.5 on j120).
    A search with two populations of ``large`` activities or more uses ``large_exchange`` instead."""
    partner: str = "tournament"
    """Where a slice's crossover partner comes from: ``tournament`` (the best, under the receiving
    slice's own weights, of ``tournament`` other slices drawn at random; the default, 0.7 to 1.2
    points better on j120) or ``ring`` (slice k±1, the earlier design)."""
    tournament: int = 4
    """Slices drawn per partner tournament; the best under the receiver's weights is copied. 4 against
    2 (issue 20, 5,000 schedules): j120 all 180 33.29% vs 33.61%, mrcpsp-j30 1.60% vs 2.04%, job
    shop 1.75% vs 1.97%, j30 0.16% (90/96 optimal) vs 0.12% (89/96)."""
    init_pool: int = 1
    """Initial lists sampled per slice; each slice keeps the best of its ``init_pool`` forward decodes
    (every one counted). 4 was within seed noise on j120, so it is off by default."""
    bipop: bool = True
    """Two populations of ``population`` members, one per decode direction, on single-mode problems
    (the bi-population GA of Debels & Vanhoucke 2005): a generation's parents are the population of
    the other direction and its children compete with their own direction's, so every child is
    decoded in the direction opposite to its parent's (an unchanged list is a justification pass,
    never a repeat of its parent). One population mixes both, and a member surviving from two
    generations back is re-decoded in its own direction. Issue 20, 5,000 schedules: j120 all 180
    32.42% / 32.48% / 32.53% (seeds 1-3; 4-6: 32.52% / 32.63% / 32.49%) against 32.58% / 32.51% /
    32.59% (32.64% / 32.67% / 32.55%); j30 0.08% / 0.07% / 0.06% against 0.09% / 0.06% / 0.13%; job
    shop 0.67% / 0.67% / 0.69% against 0.85% / 0.59% / 0.66%. Multi-mode j30 gave 0.80% / 0.95% /
    0.82% against 0.78% / 0.97% / 0.74%, so it keeps one population."""
    shrink_at: float = 0.5
    shrink_to: int = 32
    """With two populations (``bipop``), from progress ``shrink_at`` on each keeps only its best
    ``shrink_to`` members (0 = never): by half the budget the populations have collapsed onto one or
    two makespans, and half as many members get twice as many generations from the rest of the
    budget. Issue 20, 5,000 schedules: j120 all 180 32.39% / 32.35% / 32.28% (seeds 1-3; 4-6:
    32.38% / 32.35% / 32.35%) against 32.42% / 32.48% / 32.53% (32.52% / 32.63% / 32.49%) without;
    j30 0.10% / 0.09% / 0.06% (4-6: 0.09% / 0.08% / 0.08%); job shop 0.67% / 0.70% / 0.64%."""
    gamma0: float = 3.0
    t_start: float = 0.02
    t_end: float = 0.001
    mode_mutation: float = 1.0
    repair_modes: bool = True
    """Greedily repair proposals that break a non-renewable capacity before decoding them."""
    justify: bool = True
    alternate: bool = True
    """Decode each generation in the direction opposite to the last one, on lists taken from the
    current schedules (by increasing start for a forward decode, by decreasing finish for a backward
    one), instead of justifying every proposal: a proposal costs one schedule instead of three, and
    a proposal that keeps its parent's list is exactly one pass of forward-backward improvement
    (the bi-directional scheme of Debels & Vanhoucke 2007). Only where no activity has a deadline:
    a right-justified schedule is as late as it can be, which tardiness would punish."""
    peak: float = 0.5
    """Share of crossovers whose copied stretch is the partner's densest time window (peak.py)
    instead of a random one; only with ``alternate``, whose lists follow the schedules' time order.
    A search with two populations of ``large`` activities or more uses ``large_peak`` instead."""
    large: int = 60
    """Activities (dummies included) from which a search with two populations (``bipop``) proposes with
    ``large_exchange`` and ``large_peak`` instead of ``exchange`` and ``peak``."""
    large_exchange: float = 1.0
    large_peak: float = 0.7
    """Where ``large`` applies every proposal is a crossover (half of them shifted as before, none
    shifted only) and 70% of the crossovers copy the partner's densest window. Issue 20, eighth session,
    5,000 schedules: j120 all 180 32.12% / 32.27% / 32.15% (seeds 1-3, mean 32.18%; 4-6 in
    docs/scheduler.md) against 32.39% / 32.35% / 32.28% with 0.8 and 0.5. Not below ``large``: on j30
    (32 activities) the same values gave 0.12% / 0.17% / 0.08% against 0.10% / 0.09% / 0.06%, so small
    instances, multi-mode (one population) and the annealing slices keep ``exchange`` and ``peak``."""
    selection: str = "elitist"
    """``elitist``: when only the makespan varies (PSPLIB, job shop), parents and children compete
    together and the best distinct ``population`` survive (population.py), partners drawn by
    ``elitist_tournament``; ``metropolis``: each of ``replicas`` slices accepts its own proposal by
    the Metropolis rule (always the rule when cost or tardiness vary: one weight vector per slice)."""
    population: int = 64
    """Population of the elitist search (``replicas`` is the slice count of the Metropolis one)."""
    elitist_tournament: int = 2
    """Partner tournament of the elitist search (a binary tournament: survivor selection already
    keeps the pressure high, and 4 converged too early)."""
    shifts: int = 2
    """Shift moves per mutated proposal of the elitist search on single-mode problems (one elsewhere:
    a multi-mode proposal also changes a mode, and the annealing slices keep their moves). Issue 20,
    5,000 schedules: j120 all 180 33.07% / 33.09% / 33.19% (seeds 1-3) against 33.19% / 33.40% /
    33.24% with one; j30 0.09% (0.08%), job shop 0.96% (1.01%). Multi-mode j30 with two: 0.98% /
    0.90% against 0.78% / 0.97%, so it keeps one. Operators aimed at the critical chain or at events
    were at best even with a random shift (docs/scheduler.md)."""
    decompose_every: int = 0
    """Decomposition (decomposition.py; off, it did not beat seed noise on j120): every this many
    generations of the elitist search from progress ``decompose_after`` on, re-solve a window of the
    best schedule (``decompose_size / 3`` to ``decompose_size`` of the activities; at the end with
    probability ``decompose_tail``, around the least used time with ``decompose_valley``) against its
    boundary, with ``decompose_decodes`` decodes counted as schedules; 0 = never."""
    decompose_decodes: int = 32
    decompose_after: float = 0.0
    decompose_size: float = 0.3
    decompose_tail: float = 0.0
    decompose_valley: float = 0.0
    intensify_at: float = 0.0
    """Progress from which the elitist search rebuilds its population around its best member once
    (intensify.py: Valls et al. 2008's second phase); 0 = never, the default: on top of two shifts
    it moved j120 by 0.05 points (seed noise) and cost j30 an optimum (docs/scheduler.md). Only
    where every activity has one mode: the neighbours share their parent's modes, which cost
    multi-mode j30 0.19 points."""
    intensify_spread: int = 1
    """Rebuild only once the members' makespans lie within this many slots of each other (from
    ``intensify_at`` on): a population that has not collapsed still has diversity to lose (at 1,000
    schedules an unconditional rebuild cost the j120 subset 0.54 points, this one 0.11). A large
    value rebuilds at ``intensify_at`` whatever the population."""
    intensify_elite: int = 1
    """Best distinct members a rebuild keeps; the other places are their neighbours."""
    intensify_noise: float = 2.0
    """Time noise of a neighbour's list, in mean activity durations (intensify.py)."""
    parallel: float = 0.7
    """Share of the decodes of a single-mode elitist search made with the parallel SGS
    (parallel_sgs.py: non-delay schedules) instead of the serial one, each one schedule, until
    progress ``parallel_until``; the serial SGS alone after that, since non-delay schedules can miss
    every optimum. Issue 20, 5,000 schedules, seeds 1-3: j120 all 180 32.58% / 32.51% / 32.59%
    against 33.07% / 33.09% / 33.19% serial only; job shop 0.85% / 0.59% / 0.66% against 0.96% /
    1.29% / 1.38%; j30 0.09% / 0.06% / 0.13% against 0.09% / 0.05% / 0.11%. Parallel decodes
    throughout, or only for the start population, did worse (docs/scheduler.md). 0 = never."""
    parallel_until: float = 0.3
    sgs_choice: str = "share"
    """How the SGS of each decode is chosen where ``parallel`` applies (sgs_choice.py): ``share`` (the
    fixed share until ``parallel_until``), ``gene`` (each member carries the SGS that decoded it, a child
    takes its list's parent's, flipped with probability ``sgs_flip``, the whole run; Hartmann 2002) or
    ``adaptive`` (a share for the whole run that follows the parallel children's survival rate). Issue
    20, 5,000 schedules, j120 all 180, seeds 1-3: the gene with flip 0.05 from a 50% start 32.33% /
    32.33% / 32.39% (from 70%: 32.37% / 32.40% / 32.34%; flip 0.02: 32.35% / 32.36% / 32.37%) against
    32.39% / 32.35% / 32.28%, j30 seed 3 0.12%, job shop 0.83% (0.67%); adaptive 32.57% (seed 1). So the
    fixed share stays the default."""
    sgs_flip: float = 0.1
    """Probability that a child's SGS gene is flipped from its parent's (``sgs_choice="gene"``)."""
    penalty: float = 10.0
    front_size: int = 64
    makespan_slack: float = 0.2
