"""Reader for our JSON task batch (schema: ``task_batch.schema.json`` next to this file).

Turns LLM jobs into the project model: each (job, allowed model) pair is a mode whose duration comes
from the model's throughput profile and whose cost comes from the price catalog (or an explicit
price in the batch); provider concurrency and tokens-per-minute are renewable resources and the
money budget is the one non-renewable resource. Validation is by hand so the service needs no
jsonschema at runtime; errors name the line of the offending entry where it can be found.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from llm_cost_tracker.scheduler.errors import InfeasibleError, ParseError
from llm_cost_tracker.scheduler.problem import Activity, Mode, Problem, Resource
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage

CostFn = Callable[[str, str, TokenUsage], "int | None"]
"""``cost_of(provider, model, usage)`` -> pico-USD, or None when the catalog does not know the model."""

SCHEMA_PATH = Path(__file__).with_name("task_batch.schema.json")


@dataclass(frozen=True, slots=True)
class TaskBatch:
    """A parsed batch: the problem plus what is needed to report in seconds and USD."""

    name: str
    problem: Problem
    slot_seconds: float


def catalog_cost_fn(at_ns: int) -> CostFn | None:
    """Cost function backed by ``llm_cost_tracker.pricing.PriceCatalog``, or None if not installed."""
    try:
        from llm_cost_tracker.pricing import PriceCatalog
    except ImportError:
        return None
    catalog = PriceCatalog.load()

    def cost_of(provider: str, model: str, usage: TokenUsage) -> int | None:
        quote = catalog.quote(provider=provider, model=model, at_ns=at_ns, usage=usage)
        return None if quote is None else int(quote.cost_pusd)

    return cost_of


def read_batch(path: str | Path, cost_of: CostFn | None = None) -> TaskBatch:
    """Parse a task batch file from disk."""
    p = Path(path)
    return parse_batch(p.read_text(encoding="utf-8"), source=str(p), cost_of=cost_of)


def parse_batch(text: str, source: str = "<batch>", cost_of: CostFn | None = None) -> TaskBatch:
    """Parse a task batch; ``cost_of`` overrides the price catalog (tests inject a function)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise ParseError(source, 1, "invalid JSON: nested too deep (over ~900 levels of arrays/objects)") from None
    b = _Builder(text, source)
    return b.build(doc, cost_of)


class _Builder:
    """Validates the document and builds the problem, keeping the raw text to locate errors."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.caps: dict[tuple[str, str], int] = {}

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
            prov, model = self._str(m, "provider", r'"models"'), self._str(m, "model", r'"models"')
            key = f"{prov}/{model}"
            where = rf'"model"\s*:\s*"{re.escape(model)}"'
            for rate in ("input_tokens_per_second", "output_tokens_per_second"):
                v = m.get(rate)
                if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                    raise self.fail(f"model {key}: {rate} must be a positive number", where)
            if key in profiles:
                raise self.fail(f"model {key} listed twice", where)
            profiles[key] = m

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
                                          slot, at_ns, cost_of))

        budget = doc.get("budget_usd")
        nonren: tuple[Resource, ...] = ()
        if budget is not None:
            if not isinstance(budget, int | float) or isinstance(budget, bool) or budget < 0:
                raise self.fail("budget_usd must be a non-negative number", r'"budget_usd"')
            nonren = (Resource("budget_pusd", int(round(budget * PICO_PER_USD))),)
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
        return TaskBatch(name=problem.name, problem=problem, slot_seconds=slot)

    def _modes(self, job: dict[str, Any], jid: str, where: str, profiles: dict[str, dict[str, Any]],
               res_index: dict[tuple[str, str], int], n_res: int, slot: float, at_ns: int,
               cost_of: CostFn | None) -> tuple[Mode, ...]:
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
            cost = self._price(prof, prov, prof["model"], usage, cost_of, at_ns, where)
            modes.append(Mode(duration=max(1, math.ceil(seconds / slot - 1e-9)) if tin + tout else 0,
                              renewable=tuple(demand), cost=cost, label=key))
        return tuple(modes)

    def _price(self, prof: dict[str, Any], prov: str, model: str, usage: TokenUsage,
               cost_of: CostFn | None, at_ns: int, where: str) -> int:
        price = prof.get("price")
        if price is not None:
            try:
                pin, pout = float(price["input_usd_per_mtok"]), float(price["output_usd_per_mtok"])
            except (KeyError, TypeError, ValueError):
                raise self.fail(f"model {prov}/{model}: price needs input_usd_per_mtok and "
                                "output_usd_per_mtok", rf'"model"\s*:\s*"{re.escape(model)}"') from None
            return int(round((usage.input_tokens * pin + usage.output_tokens * pout) * PICO_PER_USD / 1e6))
        fn = cost_of if cost_of is not None else catalog_cost_fn(at_ns)
        cost = None if fn is None else fn(prov, model, usage)
        if cost is None:
            raise self.fail(f"no price for {prov}/{model} in the price catalog; add a \"price\" to the model",
                            rf'"model"\s*:\s*"{re.escape(model)}"')
        return int(cost)

    def _priced_at(self, doc: dict[str, Any]) -> int:
        raw = doc.get("priced_at")
        if raw is None:
            return time.time_ns()
        try:
            dt = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise self.fail("priced_at must be an ISO-8601 timestamp", r'"priced_at"') from None
        return int(dt.timestamp()) * 10**9

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
