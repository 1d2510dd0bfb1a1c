"""Reader for our JSON task batch (schema: ``task_batch.schema.json`` next to this file).

Turns LLM jobs into the project model: each (job, allowed model) pair is a mode whose duration comes
from the model's throughput profile and whose cost comes from the price catalog (or an explicit
price in the batch); provider concurrency and tokens-per-minute are renewable resources and the
money budget is the one non-renewable resource. Validation is by hand so the service needs no
jsonschema at runtime; errors name the line of the offending entry where it can be found.

What the batch leaves out comes from a :class:`~llm_cost_tracker.scheduler.inputs.PlanInputs`: prices
(tenant prices and discounts included), throughput measured from stored spans, the remainder of a named
budget. Where the catalog has a batch tier for a model, the job gets one more mode at that price whose
duration is the provider's completion window (24 h), so the Pareto front shows the trade of time for
money. What was taken from where is reported in ``TaskBatch.inputs``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError
from llm_cost_tracker.scheduler.inputs import TIER_WINDOW_SECONDS, PlanInputs, TierCostFn, catalog_tier_cost
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage

CostFn = Callable[[str, str, TokenUsage], "int | None"]
"""``cost_of(provider, model, usage)`` -> pico-USD, or None when the catalog does not know the model."""

SCHEMA_PATH = Path(__file__).with_name("task_batch.schema.json")
TIERS = ("standard", "batch")
MAX_TIER_HORIZON_SLOTS = 200_000
"""Tier modes are left out when they would make the planning horizon longer than this many slots (the
decoder keeps one profile per resource over the horizon); a larger ``slot_seconds`` brings them back."""
RATES = ("input_tokens_per_second", "output_tokens_per_second")
MAX_MEASURED_MODELS = 32
"""Models one batch may leave to be measured: each is a query on the store while the caller waits."""


@dataclass(frozen=True, slots=True)
class TaskBatch:
    """A parsed batch: the problem plus what is needed to report in seconds and USD."""

    name: str
    problem: Problem
    slot_seconds: float
    inputs: dict[str, Any] = field(default_factory=dict)
    """Where prices, speeds and the budget came from (reported with the plan)."""
    tokens: tuple[tuple[int, int], ...] = ()
    """(input, output) tokens of each job, in activity order."""


def read_batch(path: str | Path, cost_of: CostFn | None = None, inputs: PlanInputs | None = None) -> TaskBatch:
    """Parse a task batch file from disk."""
    p = Path(path)
    return parse_batch(p.read_text(encoding="utf-8"), source=str(p), cost_of=cost_of, inputs=inputs)


def parse_batch(text: str, source: str = "<batch>", cost_of: CostFn | None = None,
                inputs: PlanInputs | None = None) -> TaskBatch:
    """Parse a task batch.

    Args:
        cost_of: a standard-tier price function that overrides every catalog (tests inject one).
        inputs: the tracker's prices, speeds and budgets (None: the bundled catalog, nothing measured).
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise ParseError(source, 1, "invalid JSON: nested too deep (over ~900 levels of arrays/objects)") from None
    b = _Builder(text, source, inputs or PlanInputs())
    return b.build(doc, cost_of)


class _Builder:
    """Validates the document and builds the problem, keeping the raw text to locate errors."""

    def __init__(self, text: str, source: str, inputs: PlanInputs) -> None:
        self.text = text
        self.source = source
        self.caps: dict[tuple[str, str], int] = {}
        self.plan_inputs = inputs
        self.report: dict[str, Any] = {}
        self._tier_cost: TierCostFn | None = None
        self.tiers: tuple[str, ...] = TIERS
        self._measured = 0

    def fail(self, message: str, needle: str | None = None) -> ParseError:
        return ParseError(self.source, self._line_of(needle), message)

    def _line_of(self, needle: str | None) -> int | None:
        if not needle:
            return None
        m = re.search(needle, self.text)
        return None if m is None else self.text.count("\n", 0, m.start()) + 1

    def build(self, doc: Any, cost_of: CostFn | None) -> TaskBatch:
        if not isinstance(doc, dict):
            raise self.fail("top level must be a JSON object", r"\S")
        jobs = self._list(doc, "jobs", required=True)
        models = self._list(doc, "models", required=True)
        providers = self._list(doc, "providers", required=False)
        slot = self._num(doc, "slot_seconds", 60.0, r'"slot_seconds"')
        if slot <= 0:
            raise self.fail("slot_seconds must be positive", r'"slot_seconds"')
        at_ns = self._priced_at(doc)
        self.tiers = self._service_tiers(doc)
        self._tier_cost = self._cost_function(cost_of, at_ns)
        self.report["priced_with"] = "cost function given by the caller" if cost_of is not None \
            else self.plan_inputs.priced_with
        self.report["tenant"] = self.plan_inputs.tenant
        self.report["priced_at"] = datetime.fromtimestamp(at_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")

        resources: list[Resource] = []
        res_index: dict[tuple[str, str], int] = {}
        for prov in providers:
            name = self._str(prov, "name", r'"providers"')
            for key in ("max_concurrency", "tokens_per_minute"):
                if key in prov:
                    cap = prov[key]
                    if not isinstance(cap, int) or isinstance(cap, bool) or cap <= 0:
                        raise self.fail(f"provider {name}: {key} must be a positive integer", rf'"{key}"')
                    res_index[(name, key)] = len(resources)
                    self.caps[(name, key)] = cap
                    resources.append(Resource(f"{name}.{key}", cap))

        profiles: dict[str, dict[str, Any]] = {}
        for m in models:
            m_prov, m_name = self._str(m, "provider", r'"models"'), self._str(m, "model", r'"models"')
            key = f"{m_prov}/{m_name}"
            where = rf'"model"\s*:\s*"{re.escape(m_name)}"'
            if key in profiles:
                raise self.fail(f"model {key} listed twice", where)
            profiles[key] = {**m, **self._throughput(m, key, where)}

        ids = [self._str(j, "id", r'"jobs"') for j in jobs]
        index = {jid: i for i, jid in enumerate(ids)}
        if len(index) != len(ids):
            dup = next(x for x in ids if ids.count(x) > 1)
            raise self.fail(f"job id {dup!r} is used twice", rf'"id"\s*:\s*"{re.escape(dup)}"')
        succ: list[list[int]] = [[] for _ in jobs]
        acts_modes: list[tuple[Mode, ...]] = []
        for i, job in enumerate(jobs):
            where = rf'"id"\s*:\s*"{re.escape(ids[i])}"'
            deps = job.get("depends_on", [])
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise self.fail(f"job {ids[i]}: depends_on must be a list of job ids", where)
            for dep in deps:
                if dep not in index:
                    raise self.fail(f"job {ids[i]}: depends on unknown job {dep!r}", where)
                succ[index[dep]].append(i)
            acts_modes.append(self._modes(job, ids[i], where, profiles, res_index, len(resources),
                                          slot, at_ns))

        acts_modes = self._bound_tier_modes(acts_modes)
        cap = self._budget_cap(doc)
        nonren: tuple[Resource, ...] = ()
        if cap is not None:
            nonren = (Resource("budget_pusd", cap),)
            acts_modes = [tuple(Mode(m.duration, m.renewable, (m.cost,), m.cost, m.label) for m in ms)
                          for ms in acts_modes]
        acts = []
        for i, job in enumerate(jobs):
            where = rf'"id"\s*:\s*"{re.escape(ids[i])}"'
            weight = job.get("weight", 1.0)
            deadline = job.get("deadline_seconds")
            if not isinstance(weight, int | float) or weight < 0:
                raise self.fail(f"job {ids[i]}: weight must be a non-negative number", where)
            if deadline is not None and (not isinstance(deadline, int | float) or deadline < 0):
                raise self.fail(f"job {ids[i]}: deadline_seconds must be a non-negative number", where)
            acts.append(Activity(
                id=ids[i], modes=acts_modes[i], successors=tuple(succ[i]), weight=float(weight),
                deadline=None if deadline is None else int(math.floor(deadline / slot)),
            ))
        try:
            problem = Problem(
                name=str(doc.get("name", "batch")), activities=tuple(acts), renewable=tuple(resources),
                nonrenewable=nonren, time_unit_seconds=slot, meta=(("format", "batch"),),
            )
        except ValueError as exc:
            raise self.fail(str(exc), r'"depends_on"') from exc
        tokens = tuple((int(j.get("input_tokens", 0)), int(j.get("output_tokens", 0))) for j in jobs)
        return TaskBatch(name=problem.name, problem=problem, slot_seconds=slot, inputs=self.report, tokens=tokens)

    def _modes(self, job: dict[str, Any], jid: str, where: str, profiles: dict[str, dict[str, Any]],
               res_index: dict[tuple[str, str], int], n_res: int, slot: float,
               at_ns: int) -> tuple[Mode, ...]:
        tin, tout = job.get("input_tokens", 0), job.get("output_tokens", 0)
        conc = job.get("concurrency", 1)
        for label, v in (("input_tokens", tin), ("output_tokens", tout), ("concurrency", conc)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (label == "concurrency" and v < 1):
                raise self.fail(f"job {jid}: {label} must be a {'positive' if label == 'concurrency' else 'non-negative'} integer", where)
        allowed = job.get("models", list(profiles))
        if not isinstance(allowed, list) or not allowed:
            raise self.fail(f"job {jid}: models must be a non-empty list", where)
        usage = TokenUsage(input_tokens=tin, output_tokens=tout)
        modes = []
        for key in allowed:
            if key not in profiles:
                raise self.fail(f"job {jid}: unknown model {key!r} (declare it under models)", where)
            prof = profiles[key]
            prov = prof["provider"]
            seconds = (tin / prof["input_tokens_per_second"] + tout / prof["output_tokens_per_second"]) / conc
            tpm_cap = self.caps.get((prov, "tokens_per_minute"))
            rate = (tin + tout) * 60.0 / seconds if seconds > 0 else 0.0
            if tpm_cap is not None and rate > tpm_cap:
                seconds, rate = (tin + tout) * 60.0 / tpm_cap, float(tpm_cap)
            demand = [0] * n_res
            if (prov, "max_concurrency") in res_index:
                demand[res_index[(prov, "max_concurrency")]] = conc
            if (prov, "tokens_per_minute") in res_index:
                demand[res_index[(prov, "tokens_per_minute")]] = int(math.ceil(rate))
            cost = self._price(prof, prov, prof["model"], usage, at_ns, where)
            modes.append(Mode(duration=max(1, math.ceil(seconds / slot - 1e-9)) if tin + tout else 0,
                              renewable=tuple(demand), cost=cost, label=key))
            for tier in self.tiers:
                if tier == "standard" or prof.get("price") is not None or not tin + tout:
                    continue
                tier_cost = self._cost(prov, prof["model"], usage, tier)
                if tier_cost is not None:  # runs in the provider's own queue: no online limit is used
                    window = math.ceil(TIER_WINDOW_SECONDS[tier] / slot - 1e-9)
                    modes.append(Mode(duration=max(1, window), renewable=(0,) * n_res, cost=tier_cost,
                                      label=f"{key}@{tier}"))
        return tuple(modes)

    def _price(self, prof: dict[str, Any], prov: str, model: str, usage: TokenUsage, at_ns: int,
               where: str) -> int:
        price = prof.get("price")
        if price is not None:
            try:
                pin, pout = float(price["input_usd_per_mtok"]), float(price["output_usd_per_mtok"])
            except (KeyError, TypeError, ValueError):
                raise self.fail(f"model {prov}/{model}: price needs input_usd_per_mtok and "
                                "output_usd_per_mtok", rf'"model"\s*:\s*"{re.escape(model)}"') from None
            return int(round((usage.input_tokens * pin + usage.output_tokens * pout) * PICO_PER_USD / 1e6))
        cost = self._cost(prov, model, usage, "standard")
        if cost is None:
            raise self.fail(f"no price for {prov}/{model} in the price catalog; add a \"price\" to the model",
                            rf'"model"\s*:\s*"{re.escape(model)}"')
        return int(cost)

    def _cost_function(self, cost_of: CostFn | None, at_ns: int) -> TierCostFn | None:
        if cost_of is not None:
            given = cost_of
            return lambda p, m, u, tier: given(p, m, u) if tier == "standard" else None
        if self.plan_inputs.costs is not None:
            return self.plan_inputs.costs(at_ns)
        return None  # the bundled catalog, loaded on first use

    def _cost(self, prov: str, model: str, usage: TokenUsage, tier: str) -> int | None:
        if self._tier_cost is None:
            try:
                from llm_cost_tracker.pricing import PriceCatalog
            except ImportError:
                return None
            at_ns = self._at_ns
            self._tier_cost = catalog_tier_cost(PriceCatalog.load(), at_ns)
        return self._tier_cost(prov, model, usage, tier)

    def _throughput(self, m: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        """Both rates of a model: the batch's own where given (they win), else measured from spans."""
        given = {rate: m.get(rate) for rate in RATES if m.get(rate) is not None}
        for rate, v in given.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                raise self.fail(f"model {key}: {rate} must be a positive number", where)
        note: dict[str, Any] = {"throughput_from": "batch"}
        if len(given) < len(RATES):
            missing = [r for r in RATES if r not in given]
            speed_of = self.plan_inputs.speed_of
            self._measured += 1
            if self._measured > MAX_MEASURED_MODELS:
                raise self.fail(f"model {key}: at most {MAX_MEASURED_MODELS} models of a batch can be measured "
                                "from spans; state input_tokens_per_second and output_tokens_per_second for the "
                                "others", where)
            if speed_of is None:
                raise self.fail(f"model {key}: {' and '.join(missing)} must be a positive number (or plan through "
                                "a running tracker, which measures it from stored spans)", where)
            speed = speed_of(m["provider"], m["model"])
            if speed is None:
                raise self.fail(f"model {key}: no {' or '.join(missing)} given and no stored spans of {key} with "
                                "input and output tokens and a duration to measure it from; add "
                                f"{' and '.join(missing)} to the model, or send spans of {key} first", where)
            measured = {"input_tokens_per_second": speed.input_tokens_per_second,
                        "output_tokens_per_second": speed.output_tokens_per_second}
            given = {**{r: measured[r] for r in missing}, **given}
            note = {"throughput_from": "spans" if len(missing) == len(RATES) else "batch and spans",
                    "measured_spans": speed.spans, "measured_with": speed.method,
                    "window_hours": speed.window_hours}
        for rate in RATES:
            note[rate] = round(float(given[rate] or 0), 3)
        note["priced_from"] = "batch" if m.get("price") is not None else "catalog"
        self.report.setdefault("models", {})[key] = note
        return given

    def _service_tiers(self, doc: dict[str, Any]) -> tuple[str, ...]:
        raw = doc.get("service_tiers", list(TIERS))
        if not isinstance(raw, list) or "standard" not in raw or not set(raw) <= set(TIERS):
            raise self.fail(f"service_tiers must be a list of {', '.join(TIERS)} that includes standard",
                            r'"service_tiers"')
        return tuple(t for t in TIERS if t in raw)

    def _bound_tier_modes(self, acts_modes: list[tuple[Mode, ...]]) -> list[tuple[Mode, ...]]:
        """Drop tier modes when they would stretch the horizon past :data:`MAX_TIER_HORIZON_SLOTS`."""
        if not any("@" in m.label for ms in acts_modes for m in ms):
            return acts_modes
        horizon = sum(max(m.duration for m in ms) for ms in acts_modes)
        if horizon <= MAX_TIER_HORIZON_SLOTS:
            self.report["tier_modes"] = sum(1 for ms in acts_modes for m in ms if "@" in m.label)
            return acts_modes
        self.report["tier_modes"] = 0
        self.report["tier_modes_left_out"] = (
            f"batch-tier modes would make the horizon {horizon} slots (over {MAX_TIER_HORIZON_SLOTS}); "
            "raise slot_seconds to plan them")
        return [tuple(m for m in ms if "@" not in m.label) for ms in acts_modes]

    def _budget_cap(self, doc: dict[str, Any]) -> int | None:
        """The plan's money cap: ``budget_usd`` and what a named budget has left now, the lower."""
        caps: list[int] = []
        budget = doc.get("budget_usd")
        if budget is not None:
            if not isinstance(budget, int | float) or isinstance(budget, bool) or budget < 0:
                raise self.fail("budget_usd must be a non-negative number", r'"budget_usd"')
            caps.append(int(round(budget * PICO_PER_USD)))
        named = doc.get("budget")
        if named is not None:
            if not isinstance(named, dict) or not isinstance(named.get("name"), str) or not named["name"] \
                    or set(named) != {"name"}:
                raise self.fail('budget must be an object {"name": "<a budget of the tracker>"}', r'"budget"')
            if self.plan_inputs.budget_left is None:
                raise self.fail(f"budget {named['name']!r}: named budgets need the tracker (POST /v1/schedules, "
                                "the scheduler worker or schedule solve --from-tracker)", r'"budget"')
            try:
                left = max(0, self.plan_inputs.budget_left(named["name"]))
            except LookupError as exc:
                raise self.fail(str(exc.args[0]) if exc.args else f"unknown budget {named['name']!r}",
                                r'"budget"') from None
            caps.append(left)
            self.report["budget"] = {"name": named["name"], "remaining_usd": left / PICO_PER_USD}
        if not caps:
            return None
        self.report["budget_cap_usd"] = min(caps) / PICO_PER_USD
        return min(caps)

    def _priced_at(self, doc: dict[str, Any]) -> int:
        raw = doc.get("priced_at")
        if raw is None:
            self._at_ns = time.time_ns()
            return self._at_ns
        try:
            dt = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise self.fail("priced_at must be an ISO-8601 timestamp", r'"priced_at"') from None
        self._at_ns = int(dt.timestamp()) * 10**9
        return self._at_ns

    def _list(self, doc: dict[str, Any], key: str, required: bool) -> list[dict[str, Any]]:
        v = doc.get(key)
        if v is None and not required:
            return []
        if not isinstance(v, list) or (required and not v) or not all(isinstance(x, dict) for x in v):
            raise self.fail(f"{key} must be a non-empty list of objects", rf'"{key}"' if key in doc else r"\S")
        return v

    def _str(self, obj: dict[str, Any], key: str, where: str) -> str:
        v = obj.get(key)
        if not isinstance(v, str) or not v:
            raise self.fail(f"missing or empty string field {key!r}", where)
        return v

    def _num(self, obj: dict[str, Any], key: str, default: float, where: str) -> float:
        v = obj.get(key, default)
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise self.fail(f"{key} must be a number", where)
        return float(v)


def check_budget(batch: TaskBatch) -> None:
    """Raise :class:`InfeasibleError` when even the cheapest models exceed the budget."""
    if not batch.problem.nonrenewable:
        return
    least = sum(min(m.cost for m in a.modes) for a in batch.problem.activities)
    cap = batch.problem.nonrenewable[0].capacity
    if least > cap:
        raise InfeasibleError(
            f"budget {cap / PICO_PER_USD:.2f} USD is below the cheapest plan ({least / PICO_PER_USD:.2f} USD)"
        )
