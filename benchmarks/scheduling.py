"""Scheduling benchmark: the annealing engine on PSPLIB / JSPLIB against published results and CP-SAT.

Figures, not tests: prints per set and budget the average % deviation (j30 from the proven optimum,
j120 from the critical-path bound, multi-mode j30 from CP Optimizer), optima hit, schedules per
second, OR-Tools CP-SAT at the same wall time, and coupled vs uncoupled replicas at the same budget.
Every reported schedule (ours and CP-SAT's) goes through the independent feasibility checker.
The ``batch`` set plans a synthetic LLM task batch (``--batch-jobs`` jobs, 5 models on 3 providers,
dependencies, deadlines and a budget) and prints wall and CPU seconds per budget. The ``speed`` set
times the speed fit a tracker runs per model without a stated throughput (``fit_speed`` over the
newest ``scheduler_speed_max_spans`` = 5,000 spans, 5% of them 20x slow) and prints the rates found.

    .venv/bin/python benchmarks/scheduling.py --sets j30,j120,mm --subset 12
    nice -n 19 .venv/bin/python benchmarks/scheduling.py --sets batch --batch-jobs 1000 --budgets 5000
    .venv/bin/python benchmarks/scheduling.py --sets batch --budgets 5000 --max-placements 610000
    LCT_SCHEDULING_DATA=/path/to/scheduling .venv/bin/python benchmarks/scheduling.py
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from llm_cost_tracker.scheduler import (
    AnnealingSettings,
    InfeasibleError,
    Problem,
    SolveSettings,
    check_schedule,
    optimize,
    parse_batch,
    read_jobshop,
    read_psplib,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LCT_SCHEDULING_DATA", REPO.parent / "shared" / "benchmarks" / "scheduling"))


@dataclass
class Instance:
    name: str
    path: Path
    ref: float | None  # value deviations are measured against (None: infeasible instance)
    opt: float | None  # optimum / best known, for "hits"
    jobshop: bool = False


def load_set(name: str, subset: int | None) -> list[Instance]:
    """Instances of one set with their reference values, evenly thinned to ``subset`` if given."""
    ps = DATA / "psplib"
    if name in ("j30", "j120"):
        rows = {r["instance"]: r for r in csv.DictReader(open(ps / "bounds.csv")) if r["set"] == name}
        key = "best_ub" if name == "j30" else "cp_lb"
        out = [Instance(n, ps / name / f"{n}.sm", float(r[key]), float(r["best_ub"])) for n, r in sorted(rows.items())]
    elif name == "mm":
        rows = {r["instance"]: r for r in csv.DictReader(open(ps / "mrcpsp-j30-cpo.csv"))}
        out = []
        for n, r in sorted(rows.items()):
            obj = float(r["cpo_objective"])
            out.append(Instance(n, ps / "mrcpsp-j30" / f"{n}.mm", None if obj >= 1000 else obj,
                                float(r["cpo_lower_bound"]) if r["cpo_status"] == "Optimum" else None))
    elif name == "jsp":
        rows = {r["instance"]: r for r in csv.DictReader(open(DATA / "jsplib" / "optimum.csv"))}
        out = [Instance(n, DATA / "jsplib" / n, float(r["optimum"]), float(r["optimum"]), jobshop=True)
               for n, r in sorted(rows.items())]
    else:
        raise SystemExit(f"unknown set {name!r} (j30, j120, mm, jsp)")
    if subset and subset < len(out):
        step = len(out) / subset
        out = [out[int(i * step)] for i in range(subset)]
    return out


def read(inst: Instance) -> Problem:
    return read_jobshop(inst.path) if inst.jobshop else read_psplib(inst.path)


@dataclass
class Run:
    makespan: float | None
    seconds: float
    schedules: int
    proven_infeasible: bool = False


def run_engine(p: Problem, budget: int, seed: int, annealing: AnnealingSettings) -> Run:
    settings = SolveSettings(max_schedules=budget, time_limit=None, seed=seed, annealing=annealing)
    t0 = time.perf_counter()
    try:
        r = optimize(p, settings)
    except InfeasibleError:
        return Run(None, time.perf_counter() - t0, 0, proven_infeasible=True)
    if r.schedule is None:
        return Run(None, r.seconds, r.schedules_evaluated)
    errors = check_schedule(p, r.schedule.starts, r.schedule.modes)
    if errors:
        raise SystemExit(f"{p.name}: engine returned an infeasible schedule: {errors[:3]}")
    assert r.schedules_evaluated <= budget
    return Run(float(r.schedule.makespan), r.seconds, r.schedules_evaluated)


def synthetic_batch(n_jobs: int, seed: int = 1) -> dict[str, object]:
    """A task batch in the JSON format: jobs of 20k-2M input tokens on 2-5 of 5 models, each job
    depending on 0-2 of the 60 jobs before it, a fifth with a deadline, a budget of about a fifth
    of the way from the cheapest to the dearest plan. Deterministic for a seed."""
    rng = random.Random(seed)
    models = [("openai", "gpt-4o-mini", 4000, 80, 0.15, 0.6), ("openai", "gpt-4o", 3000, 60, 2.5, 10.0),
              ("anthropic", "claude-haiku", 5000, 100, 0.8, 4.0),
              ("anthropic", "claude-sonnet", 2500, 50, 3.0, 15.0), ("acme", "fast-1", 6000, 200, 1.0, 4.0)]
    keys = [f"{p}/{m}" for p, m, *_ in models]
    jobs: list[dict[str, object]] = []
    for i in range(n_jobs):
        job: dict[str, object] = {"id": f"job-{i:04d}", "input_tokens": rng.randint(20_000, 2_000_000),
                                  "output_tokens": rng.randint(2_000, 100_000),
                                  "concurrency": rng.choice([1, 1, 2, 4])}
        deps = {f"job-{rng.randint(max(0, i - 60), i - 1):04d}" for _ in range(rng.choice([0, 1, 1, 2]))} if i else set()
        if deps:
            job["depends_on"] = sorted(deps)
        if rng.random() < 0.5:
            job["models"] = rng.sample(keys, rng.randint(2, 4))
        if rng.random() < 0.2:
            job["deadline_seconds"] = rng.randint(3600, 48 * 3600)
        jobs.append(job)
    return {"name": f"synthetic-{n_jobs}", "slot_seconds": 60, "priced_at": "2025-06-01T00:00:00Z",
            "budget_usd": round(n_jobs * 1.0, 2),
            "providers": [{"name": "openai", "max_concurrency": 16, "tokens_per_minute": 2_000_000},
                          {"name": "anthropic", "max_concurrency": 8, "tokens_per_minute": 800_000},
                          {"name": "acme", "max_concurrency": 4}],
            "models": [{"provider": p, "model": m, "input_tokens_per_second": tin, "output_tokens_per_second": tout,
                        "price": {"input_usd_per_mtok": pin, "output_usd_per_mtok": pout}}
                       for p, m, tin, tout, pin, pout in models],
            "jobs": jobs}


def run_batch(n_jobs: int, budgets: list[int], seed: int, annealing: AnnealingSettings, time_limit: float | None,
              max_placements: int | None) -> None:
    """Parse and plan the synthetic batch once per budget; wall and CPU seconds include parsing.
    ``max_placements`` is the solve's schedules x activities cap (``SolveSettings.max_placements``),
    (off by default; ``--max-placements 610000`` plans a 1,000-job batch with 610 schedules)."""
    text = json.dumps(synthetic_batch(n_jobs, seed))
    print(f"== batch: {n_jobs} jobs, {len(text) // 1024} KiB of JSON, max_placements {max_placements}")
    for budget in budgets:
        w0, c0 = time.perf_counter(), time.process_time()
        batch = parse_batch(text, source="synthetic")
        settings = SolveSettings(max_schedules=budget, time_limit=time_limit, seed=seed, annealing=annealing,
                                 max_placements=max_placements)
        r = optimize(batch.problem, settings)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        assert r.schedule is not None
        errors = check_schedule(batch.problem, r.schedule.starts, r.schedule.modes)
        if errors:
            raise SystemExit(f"batch: infeasible schedule: {errors[:3]}")
        print(f"budget {budget:>6}: {r.schedules_evaluated} schedules, wall {wall:6.2f} s, cpu {cpu:6.2f} s, "
              f"makespan {r.schedule.makespan} slots, cost {r.schedule.cost / 1e12:.2f} USD, "
              f"tardiness {r.schedule.tardiness:.0f}, front {len(r.front)}, hypervolume {r.hypervolume:.4f}", flush=True)


def run_speed(n_spans: int = 5000, repeats: int = 20) -> None:
    """Time ``fit_speed`` on ``n_spans`` synthetic spans at 4,000 / 80 tokens/s with 5% slow outliers."""
    import numpy as np

    from llm_cost_tracker.scheduler.inputs import fit_speed

    rng = np.random.default_rng(1)
    tin = rng.integers(200, 20_000, n_spans).astype(float)
    tout = rng.integers(20, 2_000, n_spans).astype(float)
    d = tin / 4000 + tout / 80
    d[rng.random(n_spans) < 0.05] *= 20
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        speed = fit_speed(tin, tout, d)
    wall, cpu = (time.perf_counter() - w0) / repeats, (time.process_time() - c0) / repeats
    assert speed is not None
    print(f"== speed fit: {n_spans} spans, {speed.method}: {speed.input_tokens_per_second:.1f} / "
          f"{speed.output_tokens_per_second:.3f} tokens/s (true 4000 / 80), wall {wall * 1e3:.1f} ms, "
          f"cpu {cpu * 1e3:.1f} ms per fit", flush=True)


def run_cpsat(p: Problem, seconds: float, workers: int) -> Run:
    """OR-Tools CP-SAT on the same instance (optional intervals per mode), checked like ours."""
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    acts = p.activities
    horizon = sum(max(md.duration for md in a.modes) for a in acts)
    starts, ends, pres = [], [], []
    intervals: list[list[tuple[object, tuple[int, ...]]]] = [[] for _ in p.renewable]
    for a in acts:
        s, e = m.new_int_var(0, horizon, ""), m.new_int_var(0, horizon, "")
        lits = []
        for md in a.modes:
            lit = m.new_bool_var("") if len(a.modes) > 1 else m.new_constant(1)
            iv = m.new_optional_interval_var(s, md.duration, e, lit, "")
            for r, need in enumerate(md.renewable):
                if need:
                    intervals[r].append((iv, (need,)))
            lits.append(lit)
        if len(a.modes) > 1:
            m.add_exactly_one(lits)
        starts.append(s)
        ends.append(e)
        pres.append(lits)
    for r, res in enumerate(p.renewable):
        if intervals[r]:
            m.add_cumulative([iv for iv, _ in intervals[r]], [d[0] for _, d in intervals[r]], res.capacity)
    for k, res in enumerate(p.nonrenewable):
        m.add(sum(md.nonrenewable[k] * pres[i][j] for i, a in enumerate(acts) for j, md in enumerate(a.modes))
              <= res.capacity)
    for i, a in enumerate(acts):
        for s in a.successors:
            m.add(starts[s] >= ends[i])
    mk = m.new_int_var(0, horizon, "makespan")
    m.add_max_equality(mk, ends)
    m.minimize(mk)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(seconds, 0.05)
    solver.parameters.num_workers = workers
    t0 = time.perf_counter()
    status = solver.solve(m)
    took = time.perf_counter() - t0
    if status == cp_model.INFEASIBLE:
        return Run(None, took, 0, proven_infeasible=True)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Run(None, took, 0)
    st = [solver.value(s) for s in starts]
    modes = [next(j for j, lit in enumerate(pres[i]) if solver.boolean_value(lit)) for i in range(len(acts))]
    errors = check_schedule(p, st, modes)
    if errors:
        raise SystemExit(f"{p.name}: CP-SAT schedule failed the checker: {errors[:3]}")
    return Run(float(solver.value(mk)), took, 0)


def summarize(label: str, insts: list[Instance], runs: list[Run], show_rate: bool = True) -> str:
    feasible = [(i, r) for i, r in zip(insts, runs, strict=True) if i.ref is not None]
    found = [(i, r) for i, r in feasible if r.makespan is not None]
    devs = [100.0 * (r.makespan - i.ref) / i.ref for i, r in found]  # type: ignore[operator]
    hits = sum(1 for i, r in found if i.opt is not None and r.makespan == i.opt)
    secs = sum(r.seconds for r in runs)
    sched = sum(r.schedules for r in runs)
    infeasible = [(i, r) for i, r in zip(insts, runs, strict=True) if i.ref is None]
    parts = [f"{label:<28} dev {statistics.fmean(devs) if devs else float('nan'):7.2f}%",
             f"hits {hits:>3}/{len(feasible):<3}", f"feasible {len(found)}/{len(feasible)}"]
    if infeasible:
        parts.append(f"infeasible proven {sum(r.proven_infeasible for _, r in infeasible)}/{len(infeasible)}")
    parts.append(f"{secs / len(runs):6.3f} s/inst")
    if show_rate and sched:
        parts.append(f"{sched / secs:8.0f} sched/s")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="j30,j120,mm", help="comma list of j30, j120, mm, jsp, batch, speed")
    ap.add_argument("--batch-jobs", type=int, default=1000, help="jobs in the synthetic batch of set 'batch'")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds per solve (batch set only)")
    ap.add_argument("--max-placements", default=str(SolveSettings().max_placements),
                    help="schedules x activities cap per solve (batch set only; 'none', the default: the full budget)")
    ap.add_argument("--subset", type=int, default=None, help="evenly spaced N instances per set")
    ap.add_argument("--budgets", default="1000,5000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replicas", type=int, default=AnnealingSettings().replicas, help="annealing slices")
    ap.add_argument("--population", type=int, default=AnnealingSettings().population,
                    help="members of the elitist search (single-objective sets)")
    ap.add_argument("--no-cpsat", action="store_true")
    ap.add_argument("--cpsat-workers", type=int, default=2)
    ap.add_argument("--no-compare", action="store_true", help="skip coupled vs uncoupled")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override an AnnealingSettings field (repeatable), e.g. --set t_start=0.01")
    args = ap.parse_args(argv)
    if not (DATA / "psplib").is_dir():
        print(f"instances not found at {DATA}; set LCT_SCHEDULING_DATA", file=sys.stderr)
        return 2
    budgets = [int(b) for b in args.budgets.split(",")]
    coupled = replace(AnnealingSettings(), replicas=args.replicas, population=args.population)
    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(coupled, key)
        coupled = replace(coupled, **{key: type(current)(value) if not isinstance(current, bool)
                                      else value.lower() in ("1", "true", "yes")})
    variants = {"default": coupled}
    if not args.no_compare:  # the coupling question of issue 7 is about the annealing slices
        slices = replace(coupled, selection="metropolis", alternate=False)
        variants["annealing slices"] = slices
        variants["uncoupled chains"] = replace(slices, coupling=0.0, exchange=0.0)
        variants["exchange + energy J=10"] = replace(slices, coupling=10.0)
        variants["energy only J=10"] = replace(slices, coupling=10.0, exchange=0.0)
    print(f"data: {DATA}\nsettings: {coupled}\nload: {_uptime()}\n")
    for set_name in args.sets.split(","):
        if set_name == "batch":
            cap = None if args.max_placements.lower() == "none" else int(args.max_placements)
            run_batch(args.batch_jobs, budgets, args.seed, coupled, args.time_limit, cap)
            print()
            continue
        if set_name == "speed":
            run_speed()
            print()
            continue
        insts = load_set(set_name, args.subset)
        problems = [read(i) for i in insts]
        print(f"== {set_name}: {len(insts)} instances")
        for budget in budgets:
            times: list[float] = []
            for vname, ann in variants.items():
                if vname != "default" and budget != max(budgets):
                    continue
                runs = [run_engine(p, budget, args.seed, ann) for p in problems]
                if vname == "default":
                    times = [r.seconds for r in runs]
                print(summarize(f"{vname} @{budget}", insts, runs), flush=True)
            if not args.no_cpsat and budget == max(budgets):
                runs = [run_cpsat(p, t, args.cpsat_workers) for p, t in zip(problems, times, strict=True)]
                print(summarize(f"CP-SAT same wall time ({args.cpsat_workers}w)", insts, runs, False), flush=True)
        print()
    print(f"load: {_uptime()}")
    return 0


def _uptime() -> str:
    """Load averages, printed with every set of figures (the machine is shared)."""
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


if __name__ == "__main__":
    sys.exit(main())
