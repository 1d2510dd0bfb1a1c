"""The scheduling problem: what must be planned, independent of how it is solved.

A multi-mode resource-constrained project (MRCPSP): activities with precedence, each run in one of
its modes (for LLM batches a mode is a model), renewable resources (concurrency, tokens per minute)
that bound what runs at once, non-renewable resources (money) that bound the whole plan, plus
weights and deadlines for tardiness. :func:`compile_problem` turns it into the arrays the vectorized
decoder works on, so the frozen model stays readable and the hot path stays numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Mode:
    """One way to run an activity: its duration and what it consumes."""

    duration: int
    renewable: tuple[int, ...] = ()
    nonrenewable: tuple[int, ...] = ()
    cost: int = 0
    """Money of this mode in the problem's cost unit (pico-USD for task batches)."""
    label: str = ""


@dataclass(frozen=True, slots=True)
class Activity:
    """A job: its modes, the indices of its successors, and how much lateness hurts."""

    id: str
    modes: tuple[Mode, ...]
    successors: tuple[int, ...] = ()
    weight: float = 0.0
    deadline: int | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """A named resource and its capacity (per time unit if renewable, in total otherwise)."""

    name: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Problem:
    """A complete instance; validated on construction so solvers can trust it."""

    name: str
    activities: tuple[Activity, ...]
    renewable: tuple[Resource, ...] = ()
    nonrenewable: tuple[Resource, ...] = ()
    time_unit_seconds: float = 1.0
    meta: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        errors = _validate(self)
        if errors:
            raise ValueError("invalid problem: " + "; ".join(errors))

    @property
    def n(self) -> int:
        """Number of activities."""
        return len(self.activities)


def _validate(p: Problem) -> list[str]:
    """Every structural error of the instance, so a reader can report them together."""
    errors: list[str] = []
    n, r, k = len(p.activities), len(p.renewable), len(p.nonrenewable)
    if n == 0:
        errors.append("no activities")
    for i, act in enumerate(p.activities):
        if not act.modes:
            errors.append(f"activity {act.id} has no mode")
        for m in act.modes:
            if m.duration < 0 or len(m.renewable) != r or len(m.nonrenewable) != k:
                errors.append(f"activity {act.id} has a mode with a bad duration or demand length")
            if min(m.renewable, default=0) < 0 or min(m.nonrenewable, default=0) < 0:
                errors.append(f"activity {act.id} has a negative demand")
        for s in act.successors:
            if not 0 <= s < n or s == i:
                errors.append(f"activity {act.id} has a bad successor index {s}")
    if not errors and topological_order(p) is None:
        errors.append("precedence relations contain a cycle")
    return errors


def topological_order(p: Problem) -> list[int] | None:
    """Kahn's order of activity indices (stable by index), or None when there is a cycle."""
    indeg = [0] * p.n
    for act in p.activities:
        for s in act.successors:
            indeg[s] += 1
    ready = [i for i in range(p.n) if indeg[i] == 0]
    out: list[int] = []
    while ready:
        ready.sort(reverse=True)
        i = ready.pop()
        out.append(i)
        for s in p.activities[i].successors:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return out if len(out) == p.n else None


@dataclass(frozen=True, slots=True, eq=False)
class Arrays:
    """Padded numpy view of a problem; ``M`` is the largest number of modes of any activity."""

    n: int
    dur: IntArray  # [n, M]; unused mode slots repeat mode 0
    dem: IntArray  # [n, M, R]
    nrd: IntArray  # [n, M, K]
    cost: IntArray  # [n, M]
    nmodes: IntArray  # [n]
    valid: BoolArray  # [n, M] mode exists and fits the renewable capacities
    cap: IntArray  # [R]
    ncap: IntArray  # [K]
    pred_pad: IntArray  # [n, P] predecessor indices padded with n
    succ_pad: IntArray  # [n, S] successor indices padded with n
    rank: IntArray  # [n] position in a fixed topological order
    horizon: int  # upper bound on any serial-SGS makespan
    weight: FloatArray  # [n]
    deadline: IntArray  # [n]; a huge value when there is none
    lft: IntArray  # [n] latest finish from backward CPM on shortest modes
    cp_lb: int  # critical-path length on shortest modes
    need_r: IntArray  # [n, M, R] per mode the renewable resources it demands first, then the others
    need_q: IntArray  # [n, M, R] the demands in that order (0 past the demanded ones)
    need_k: IntArray  # [n, M] how many resources each mode demands (the decoder reads only those)


NO_DEADLINE = 2**40


def compile_problem(p: Problem) -> Arrays:
    """Pad the instance into arrays (once per solve; the decoder never touches the dataclasses)."""
    n, r, k = p.n, len(p.renewable), len(p.nonrenewable)
    big_m = max(len(a.modes) for a in p.activities)
    dur = np.zeros((n, big_m), np.int64)
    dem = np.zeros((n, big_m, r), np.int64)
    nrd = np.zeros((n, big_m, k), np.int64)
    cost = np.zeros((n, big_m), np.int64)
    valid = np.zeros((n, big_m), bool)
    cap = np.array([res.capacity for res in p.renewable], np.int64).reshape(r)
    for i, act in enumerate(p.activities):
        for j in range(big_m):
            mode = act.modes[j] if j < len(act.modes) else act.modes[0]
            dur[i, j] = mode.duration
            dem[i, j] = mode.renewable
            nrd[i, j] = mode.nonrenewable
            cost[i, j] = mode.cost
            valid[i, j] = j < len(act.modes) and bool(np.all(dem[i, j] <= cap))
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, act in enumerate(p.activities):
        for s in act.successors:
            preds[s].append(i)
    succs = [list(a.successors) for a in p.activities]
    order = topological_order(p)
    assert order is not None
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    shortest = np.where(valid, dur, np.iinfo(np.int64).max).min(axis=1)
    shortest = np.where(valid.any(axis=1), shortest, 0)
    ef = np.zeros(n, np.int64)
    for i in order:
        es = max((int(ef[q]) for q in preds[i]), default=0)
        ef[i] = es + shortest[i]
    cp_lb = int(ef.max(initial=0))
    lft = np.full(n, cp_lb, np.int64)
    for i in reversed(order):
        if succs[i]:
            lft[i] = min(int(lft[s] - shortest[s]) for s in succs[i])
    deadline = np.array(
        [NO_DEADLINE if a.deadline is None else a.deadline for a in p.activities], np.int64
    )
    need_r, need_q, need_k = _demanded(dem)
    return Arrays(
        n=n,
        dur=dur,
        dem=dem,
        nrd=nrd,
        cost=cost,
        nmodes=np.array([len(a.modes) for a in p.activities], np.int64),
        valid=valid,
        cap=cap,
        ncap=np.array([res.capacity for res in p.nonrenewable], np.int64).reshape(k),
        pred_pad=_pad(preds, n),
        succ_pad=_pad(succs, n),
        rank=rank,
        horizon=int(np.where(valid, dur, 0).max(axis=1).sum()) + 1,
        weight=np.array([a.weight for a in p.activities], np.float64),
        deadline=deadline,
        lft=lft,
        cp_lb=cp_lb,
        need_r=need_r,
        need_q=need_q,
        need_k=need_k,
    )


def _demanded(dem: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Each mode's demanded resources first (stable), so the decoder skips the zero demands."""
    need = dem > 0
    by_need = np.argsort(~need, axis=2, kind="stable").astype(np.int64)
    need_q = np.ascontiguousarray(np.take_along_axis(dem, by_need, axis=2))
    return by_need, need_q, need.sum(axis=2).astype(np.int64)


def _pad(lists: list[list[int]], fill: int) -> IntArray:
    width = max(1, max((len(x) for x in lists), default=1))
    out = np.full((len(lists), width), fill, np.int64)
    for i, xs in enumerate(lists):
        out[i, : len(xs)] = xs
    return out


def objectives(start: IntArray, modes: IntArray, a: Arrays) -> FloatArray:
    """``[P, 3]`` makespan, total cost and weighted tardiness of decoded schedules."""
    cols = np.arange(a.n)[None, :]
    finish = start + a.dur[cols, modes]
    late = np.maximum(finish - a.deadline[None, :], 0) * a.weight[None, :]
    return np.stack([finish.max(axis=1), a.cost[cols, modes].sum(axis=1), late.sum(axis=1)], axis=1).astype(
        np.float64
    )
