"""Simulated quantum annealing over a population of schedule replicas, and its elitist variant.

Replicas are Trotter slices on a ring. Each generation every slice proposes a move (shift one
activity, change one mode, or copy a segment from a tournament-chosen slice), all proposals are decoded
at once by the vectorized serial SGS and justified, and each slice accepts by Metropolis on its own
objective plus a coupling term that rewards agreeing with its neighbours. The coupling follows the
path-integral schedule J = -T/2 ln tanh(Gamma) with Gamma falling to ~0, so slices explore
independently early and are pulled together late. Setting ``coupling=0`` and ``exchange=0`` gives
the same number of independent annealing chains, which the benchmark compares against.

When only the makespan varies (PSPLIB, job shop; issue 20) the same moves run as an elitist genetic
search instead: each generation decodes in the direction opposite to the last one (directions.py,
one schedule per proposal instead of three; a single-mode search decodes 70% of them with the parallel
SGS until 30% of the budget, parallel_sgs.py, sgs_choice.py), half the crossovers copy the partner's
densest time window (peak.py; from 60 activities every proposal is a crossover, 70% of them at the
peak), and parents and children compete for the places (population.py;
single-mode: one population per direction, the parents taken from the other direction's);
optionally a single-mode search is rebuilt around its best member once its makespans have collapsed
(intensify.py, off). Task batches (cost and tardiness vary, deadlines) keep the annealing slices
and full justification."""

from __future__ import annotations

import math
import time

import numpy as np

from llm_cost_tracker.scheduler import directions
from llm_cost_tracker.scheduler import modes as modes_mod
from llm_cost_tracker.scheduler import operators as ops
from llm_cost_tracker.scheduler.decomposition import improve_window
from llm_cost_tracker.scheduler.errors import InfeasibleError
from llm_cost_tracker.scheduler.intensify import neighbour_lists
from llm_cost_tracker.scheduler.pareto import normalized_hypervolume, pick_default, unique_front
from llm_cost_tracker.scheduler.peak import peak_cuts
from llm_cost_tracker.scheduler.population import survivors
from llm_cost_tracker.scheduler.problem import (
    NO_DEADLINE,
    FloatArray,
    IntArray,
    Problem,
    compile_problem,
    objectives,
)
from llm_cost_tracker.scheduler.result import Schedule, ScheduleResult
from llm_cost_tracker.scheduler.search_settings import AnnealingSettings
from llm_cost_tracker.scheduler.sgs import justify, serial_sgs
from llm_cost_tracker.scheduler.sgs_choice import SgsChoice
from llm_cost_tracker.scheduler.termination import Termination

_STATE = ("order", "modes", "start", "f", "exc", "objs", "gene")  # one population of the elitist search


class QuantumAnnealing:
    """The optimizer: ``setup`` then ``has_next``/``next`` (or ``ask``/``tell``) then ``result``."""

    name = "sqa"

    def __init__(self, settings: AnnealingSettings | None = None) -> None:
        self.settings = settings or AnnealingSettings()
        self.schedules_evaluated = 0
        self.started_at = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def setup(self, problem: Problem, termination: Termination, seed: int | None = None) -> None:
        """Compile the problem, prove or rule out non-renewable infeasibility, decode the start population."""
        s = self.settings
        self.problem = problem
        self.termination = termination
        self.rng = np.random.default_rng(seed)
        self.started_at = time.perf_counter()
        self.schedules_evaluated = 0
        a = self.a = compile_problem(problem)
        status, base_modes, why = modes_mod.feasible_modes(a)
        if status is modes_mod.Status.INFEASIBLE:
            raise InfeasibleError(why)
        self.base_modes = base_modes
        if s.selection not in ("elitist", "metropolis"):
            raise ValueError(f"selection must be 'elitist' or 'metropolis', not {s.selection!r}")
        timed = bool((a.deadline < NO_DEADLINE).any())
        self.alternate = s.alternate and s.justify and not timed
        self.elitist = s.selection == "elitist" and not timed and not bool((a.cost != a.cost[:, :1]).any())
        self.tournament = s.elitist_tournament if self.elitist else s.tournament
        single_mode = bool((a.valid.sum(axis=1) <= 1).all())
        self.shifts = max(1, s.shifts) if self.elitist and single_mode else 1
        self.parallel = s.parallel if self.elitist and self.alternate and single_mode else 0.0
        self.sgs = SgsChoice(s.sgs_choice, self.rng, self.parallel, s.parallel_until, s.sgs_flip)
        self.backward = False  # this generation decodes backward (alternate only)
        rebuild = self.elitist and self.alternate and single_mode and s.intensify_at > 0
        self.rebuild_at = s.intensify_at if rebuild else 2.0  # progress from which to rebuild (2: never)
        self.generation = 0
        self.bipop = s.bipop and self.elitist and self.alternate and single_mode
        big = self.bipop and a.n >= s.large  # crossover-only proposals, more peak windows (search_settings.py)
        self.exchange, self.peak = (s.large_exchange, s.large_peak) if big else (s.exchange, s.peak)
        self.other: tuple[np.ndarray, ...] | None = None  # bipop: the population of the other direction
        self.reversed = directions.reversed_arrays(a)
        left = termination.remaining_schedules(self)
        size = s.population if self.elitist else s.replicas
        pop = self.pop = max(1, size if left is None else min(size, left))
        f_max = np.array([a.cp_lb, a.cost.max(initial=0) * a.n, float(a.weight.sum()) * max(a.cp_lb, 1)])
        self.scale = np.where(f_max > 0, f_max, 1.0).astype(np.float64)
        self.weights = self._replica_weights(pop)
        self.front_f = np.zeros((0, 3))
        self.front_x: list[tuple[IntArray, IntArray]] = []
        self.objs = np.zeros((pop, 3))
        self.exc = np.zeros(pop, np.int64)
        self.gene = np.zeros(pop, bool)  # the SGS that decoded each member (True: parallel; sgs_choice.py)
        k = s.init_pool if left is None or left >= pop * (s.init_pool + 2) else 1
        bias = np.where(np.arange(pop * k) % 4 == 0, 0.0, self.rng.uniform(0.5, 3.0, pop * k))
        order = ops.sample_lists(pop * k, a, self.rng, bias)
        m0 = np.concatenate([self._initial_modes(pop) for _ in range(k)])
        start = None
        if k > 1:
            # decode the whole pool forward; slice i keeps the best of lists i, i + pop, i + 2 pop, ...
            pool_start = serial_sgs(order, m0, a)
            self.schedules_evaluated += order.shape[0]
            pool_objs = objectives(pool_start, m0, a)
            pool_exc = modes_mod.excess(m0, a)
            self._archive(pool_objs, pool_exc, pool_start, m0)
            score = (pool_objs.reshape(k, pop, 3) / self.scale * self.weights[None]).sum(axis=2)
            score = score + s.penalty * pool_exc.reshape(k, pop) / max(int(a.ncap.sum()), 1)
            pick = score.argmin(axis=0) * pop + np.arange(pop)
            order, m0, start = order[pick], m0[pick], pool_start[pick]
        self.order, self.modes = order, m0
        rows = np.ones(pop, bool)
        first = self._evaluate(order, m0, rows) if start is None else self._evaluate(order, m0, rows, start)
        self.order, self.modes, self.f, self.exc, self.objs = first
        self.start, self.gene = self._new_start, self._new_gene

    def has_next(self) -> bool:
        """True while no criterion has fired and at least one schedule of budget is left."""
        left = self.termination.remaining_schedules(self)
        return self.termination.progress(self) < 1.0 and (left is None or left > 0)

    def next(self) -> None:
        """One generation: propose, decode, accept."""
        order, modes, rows = self.ask()
        self.tell(order, modes, rows)

    def ask(self) -> tuple[IntArray, IntArray, np.ndarray]:
        """Proposals for every slice and the mask of slices the remaining budget can decode.

        With alternating directions each call turns the direction: the proposals are lists for it,
        taken from the current schedules, and :meth:`tell` decodes them that way.
        """
        s, a, pop, rng = self.settings, self.a, self.pop, self.rng
        left = self.termination.remaining_schedules(self)
        per = 1 if self.alternate or not s.justify else 3
        k = pop if left is None else min(pop, max(left // per, min(left, pop)))
        rows = np.arange(pop) < k
        partner = self._partners()
        swap = rng.random(pop) < self.exchange
        base = self.order
        if self.alternate:
            self.backward = not self.backward
            base = directions.list_of(self.start, self.modes, a, backward=self.backward)
        cuts = None
        if self.alternate and self.peak > 0:
            rand = np.sort(rng.integers(0, a.n + 1, (pop, 2)), axis=1)
            peak = peak_cuts(self.start[partner], self.modes[partner], a, rng, backward=self.backward)
            cuts = np.where((rng.random(pop) < self.peak)[:, None], peak, rand)
        order, modes = ops.exchange(base, self.modes, partner, rng, swap, cuts)
        moving = ~swap | (rng.random(pop) < 0.5)
        for _ in range(self.shifts):
            order = ops.shift(order, self.reversed if self.backward else a, rng, moving)
        modes = ops.mutate_modes(modes, a, rng, rng.random(pop) < s.mode_mutation)
        if s.repair_modes:
            modes = modes_mod.repair(modes, a, rng, None)
        return order, modes, rows

    def tell(self, order: IntArray, modes: IntArray, rows: np.ndarray) -> None:
        """Decode the proposals of ``rows`` and accept each by Metropolis with the coupling term (the
        elitist search instead keeps the best distinct of parents and children)."""
        prog = self.termination.progress(self)
        order, modes, f_new, exc_new, objs_new = self._evaluate(order, modes, rows)
        if self.elitist:
            if self.bipop:  # the parents were the other direction's population; the children join their own
                mine = tuple(getattr(self, k) for k in _STATE)
                for k, v in zip(_STATE, self.other or mine, strict=True):  # the first generation: the parents'
                    setattr(self, k, v)
                self.other = mine
            self._select(order, modes, f_new, exc_new, objs_new, rows)
            self.generation += 1
            if self.bipop and prog >= self.settings.shrink_at and self.pop > self.settings.shrink_to > 0:
                self._shrink(self.settings.shrink_to)
            if prog >= self.rebuild_at and np.ptp(self.objs[:, 0]) <= self.settings.intensify_spread:
                self.rebuild_at = 2.0  # once: two or four rebuilds did worse (docs/scheduler.md)
                self._rebuild()
            every = self.settings.decompose_every
            if every and self.generation % every == 0 and prog >= self.settings.decompose_after:
                self._decompose()
            return
        temp = self.settings.t_start * (self.settings.t_end / self.settings.t_start) ** prog
        j_perp = self._coupling(prog, temp)
        delta = f_new - self.f
        if j_perp > 0:
            near = ops.ring_distance(order, modes, self.order, self.modes) - ops.ring_distance(
                self.order, self.modes, self.order, self.modes)
            delta = delta + j_perp * near
        accept = rows & ((delta <= 0) | (self.rng.random(self.pop) < np.exp(-np.maximum(delta, 0) / temp)))
        self.order = np.where(accept[:, None], order, self.order)
        self.start = np.where(accept[:, None], self._new_start, self.start)
        self.modes = np.where(accept[:, None], modes, self.modes)
        self.f = np.where(accept, f_new, self.f)
        self.exc = np.where(accept, exc_new, self.exc)
        self.objs = np.where(accept[:, None], objs_new, self.objs)

    def result(self) -> ScheduleResult:
        """The default pick from the front, with the budget actually used."""
        seconds = time.perf_counter() - self.started_at
        if not self.front_x:
            return ScheduleResult(
                success=False,
                message="No feasible schedule found (non-renewable capacities never met).",
                schedule=None,
                front=(),
                hypervolume=0.0,
                schedules_evaluated=self.schedules_evaluated,
                seconds=seconds,
                algorithm=self.name,
            )
        front = tuple(
            Schedule(tuple(int(x) for x in st), tuple(int(x) for x in md), int(f[0]), int(f[1]), float(f[2]))
            for (st, md), f in zip(self.front_x, self.front_f, strict=True)
        )
        pick = pick_default(self.front_f, self.settings.makespan_slack)
        return ScheduleResult(
            success=True,
            message=f"Best of {self.schedules_evaluated} decoded schedules.",
            schedule=front[pick],
            front=front,
            hypervolume=normalized_hypervolume(self.front_f),
            schedules_evaluated=self.schedules_evaluated,
            seconds=seconds,
            algorithm=self.name,
        )

    # -- internals -------------------------------------------------------------------------------
    def _evaluate(
        self, order: IntArray, modes: IntArray, rows: np.ndarray, start: IntArray | None = None
    ) -> tuple[IntArray, IntArray, FloatArray, IntArray, FloatArray]:
        """Decode (and justify, budget permitting) the selected replicas; count every pass.

        ``start``: forward decodes of all rows already made (and counted) by the caller.
        """
        a = self.a
        sel = np.flatnonzero(rows)
        out_order, f, exc = order.copy(), np.full(self.pop, np.inf), np.zeros(self.pop, np.int64)
        out_objs = np.zeros((self.pop, 3))
        self._new_start = np.zeros((self.pop, a.n), np.int64)
        self._new_gene = np.zeros(self.pop, bool)
        if sel.size == 0:
            return out_order, modes, f, exc, out_objs
        o, m = order[sel], modes[sel]
        if self.alternate and start is None:
            par = self.sgs.rows(self.termination.progress(self), self.gene[sel])  # rows for the parallel SGS
            start = directions.decode(o, m, a, backward=self.backward, parallel=par)
            self._new_gene[sel] = False if par is None else par
            self.schedules_evaluated += sel.size
        elif start is None:
            start = serial_sgs(o, m, a)
            self.schedules_evaluated += sel.size
        else:
            start = start[sel]
        left = self.termination.remaining_schedules(self)
        if self.settings.justify and not self.alternate and (left is None or left >= 2 * sel.size):
            start, o = justify(start, m, a)
            self.schedules_evaluated += 2 * sel.size
        objs = objectives(start, m, a)
        e = modes_mod.excess(m, a)
        self._archive(objs, e, start, m)
        out_order[sel] = o
        f[sel] = (objs / self.scale * self.weights[sel]).sum(axis=1) + self.settings.penalty * e / np.maximum(
            a.ncap.sum(), 1
        )
        exc[sel] = e
        out_objs[sel] = objs
        self._new_start[sel] = start
        return out_order, modes, f, exc, out_objs

    def _select(
        self, order: IntArray, modes: IntArray, f: FloatArray, exc: IntArray, objs: FloatArray, rows: np.ndarray
    ) -> None:
        """Elitist survivors among the decoded children (first) and the current population."""
        kids = self._kids(order, modes, f, exc, objs)
        both = {k: np.concatenate([kids[k][rows], getattr(self, k)]) for k in _STATE}
        pick = survivors(both["f"], both["start"], both["modes"], self.pop)
        for k in _STATE:
            setattr(self, k, both[k][pick])
        self.sgs.observe(self._new_gene[rows], np.isin(np.arange(int(rows.sum())), pick))  # children first

    def _kids(self, order: IntArray, modes: IntArray, f: FloatArray, exc: IntArray,
              objs: FloatArray) -> dict[str, np.ndarray]:
        """The decoded proposals as population state (``_STATE``), starts and genes from :meth:`_evaluate`."""
        return dict(zip(_STATE, (order, modes, self._new_start, f, exc, objs, self._new_gene), strict=True))

    def _rebuild(self) -> None:
        """Keep the best distinct members, replace the others by their neighbours, decoded (and
        counted) by :meth:`_evaluate` in the next direction; the next generation turns back."""
        s = self.settings
        elite = min(max(s.intensify_elite, 1), self.pop)
        left = self.termination.remaining_schedules(self)
        new = self.pop - elite if left is None else min(self.pop - elite, left)
        if new <= 0:
            return
        self.backward = not self.backward
        parents = np.arange(new) % elite  # survivors sort the population best first
        order, modes = self.order.copy(), self.modes.copy()
        modes[elite:elite + new] = self.modes[parents]
        self.gene = np.concatenate([self.gene[:elite], self.gene[parents], self.gene[elite + new:]])  # inherited
        order[elite:elite + new] = neighbour_lists(
            self.start[parents], self.modes[parents], self.a, self.rng, s.intensify_noise, backward=self.backward
        )
        rows = np.zeros(self.pop, bool)
        rows[elite:elite + new] = True
        order, modes, f, exc, objs = self._evaluate(order, modes, rows)
        keep = slice(0, elite + new)
        for k, v in self._kids(order, modes, f, exc, objs).items():
            setattr(self, k, np.where(rows.reshape(-1, *[1] * (v.ndim - 1)), v, getattr(self, k))[keep])
        self.weights = self.weights[keep]
        self.pop = elite + new
        self.other = None  # bipop: the other direction's population starts again from this one

    def _shrink(self, size: int) -> None:
        """Both populations keep their first ``size`` members in survivor order (distinct, then best)."""
        for k in _STATE:
            setattr(self, k, getattr(self, k)[:size])
        self.other = None if self.other is None else tuple(x[:size] for x in self.other)
        self.weights, self.pop = self.weights[:size], size

    def _decompose(self) -> None:
        """Re-solve a window of the best member against its boundary; the result joins as a child."""
        s, left = self.settings, self.termination.remaining_schedules(self)
        budget = s.decompose_decodes if left is None else min(s.decompose_decodes, left)
        best = int(np.argmin(self.f))
        if budget <= 0 or self.exc[best] > 0:
            return
        start, spent = improve_window(
            self.start[best], self.modes[best], self.a, self.rng, budget,
            low=s.decompose_size / 3, high=s.decompose_size, tail=s.decompose_tail,
            valley=s.decompose_valley, donors=self.start[np.arange(self.pop) != best],
        )
        self.schedules_evaluated += spent
        start, m = start[None, :], self.modes[best:best + 1]
        objs = objectives(start, m, self.a)
        self._archive(objs, np.zeros(1, np.int64), start, m)
        self._new_start, self._new_gene = start, np.zeros(1, bool)  # a serial decode
        f = (objs / self.scale * self.weights[best:best + 1]).sum(axis=1)
        self._select(self.order[best:best + 1], m, f, np.zeros(1, np.int64), objs, np.ones(1, bool))

    def _partners(self) -> IntArray:
        """Crossover partner of every slice (never itself when there are two or more slices)."""
        pop, rng, idx = self.pop, self.rng, np.arange(self.pop)
        if self.settings.partner == "ring" or pop < 3:
            return (idx + np.where(rng.random(pop) < 0.5, 1, -1)) % pop
        cand = (idx[:, None] + rng.integers(1, pop, (pop, self.tournament))) % pop  # others
        score = (self.objs[cand] / self.scale * self.weights[:, None, :]).sum(axis=2)
        score = score + self.settings.penalty * self.exc[cand] / max(int(self.a.ncap.sum()), 1)
        chosen: IntArray = cand[idx, score.argmin(axis=1)]
        return chosen

    def _archive(self, objs: FloatArray, exc: IntArray, start: IntArray, modes: IntArray) -> None:
        ok = np.flatnonzero(exc == 0)
        if ok.size == 0:
            return
        cand = np.concatenate([self.front_f, objs[ok]])
        xs = self.front_x + [(start[i].copy(), modes[i].copy()) for i in ok]
        keep = unique_front(cand)
        if keep.size > self.settings.front_size:
            keep = keep[np.argsort(cand[keep, 0], kind="stable")]
            keep = keep[np.linspace(0, keep.size - 1, self.settings.front_size).round().astype(int)]
        self.front_f = cand[keep]
        self.front_x = [xs[i] for i in keep]

    def _initial_modes(self, pop: int) -> IntArray:
        a = self.a
        short = modes_mod.shortest_modes(a)
        rnd = np.floor(self.rng.random((pop, a.n)) * a.valid.sum(axis=1)).astype(np.int64)
        valid_idx = np.argsort(~a.valid, axis=1, kind="stable")  # valid modes first
        rnd = valid_idx[np.arange(a.n)[None, :], rnd]
        base = short if self.base_modes is None else self.base_modes
        m = np.where(self.rng.random((pop, 1)) < 0.5, short[None, :], rnd)
        # a quarter start from the least-total-duration feasible vector, lightly perturbed
        near = np.where(self.rng.random((pop, a.n)) < 0.1, rnd, base[None, :])
        m = np.where((np.arange(pop) % 4 == 1)[:, None], near, m)
        return modes_mod.repair(m, a, self.rng, self.base_modes)

    def _replica_weights(self, pop: int) -> FloatArray:
        """Scalarisation weights per slice, spread over the simplex when cost or tardiness vary."""
        a = self.a
        varies = np.array([True, bool((a.cost != a.cost[:, :1]).any()), bool((a.deadline < 2**40).any())])
        w = self.rng.dirichlet(np.ones(3), pop) * varies
        w[0] = varies / varies.sum()
        w[:, 0] = np.maximum(w[:, 0], 0.05)
        return np.asarray(w / w.sum(axis=1, keepdims=True), np.float64)

    def _coupling(self, prog: float, temp: float) -> float:
        s = self.settings
        if s.coupling <= 0:
            return 0.0
        gamma = max(s.gamma0 * (1.0 - prog), 1e-3)
        return s.coupling * temp * -0.5 * math.log(math.tanh(gamma))
