"""JSON task batches: schema, durations and costs, budget, and the batch solve path."""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pytest

from llm_cost_tracker.scheduler import InfeasibleError, ParseError, SolveSettings, check_schedule, parse_batch
from llm_cost_tracker.scheduler.batch import SCHEMA_PATH, check_budget, read_batch
from llm_cost_tracker.scheduler.pareto import find_non_dominated
from llm_cost_tracker.scheduler.solve import Scheduler
from llm_cost_tracker.types import PICO_PER_USD, TokenUsage
from tests.scheduler.conftest import TESTDATA

BATCH = TESTDATA / "batch.json"


def test_shipped_batch_validates_against_the_schema() -> None:
    """The example batch conforms to the JSON Schema shipped in the package."""
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(BATCH.read_text()), schema)


def test_durations_follow_throughput_and_costs_follow_prices() -> None:
    """A mode's duration is tokens over throughput (in slots) and its cost the stated price."""
    b = read_batch(BATCH)
    extract = b.problem.activities[0]
    mini = next(m for m in extract.modes if m.label == "openai/gpt-4o-mini")
    seconds = (2_000_000 / 4000 + 100_000 / 80) / 2
    assert mini.duration == math.ceil(seconds / 60)
    assert mini.cost == round((2.0 * 0.15 + 0.1 * 0.6) * PICO_PER_USD)
    assert mini.nonrenewable == (mini.cost,)
    conc, tpm = b.problem.renewable[0], b.problem.renewable[1]
    assert (conc.name, tpm.name) == ("openai.max_concurrency", "openai.tokens_per_minute")
    assert mini.renewable[0] == 2 and mini.renewable[1] == math.ceil(2_100_000 * 60 / seconds)


def test_tokens_per_minute_limit_throttles_a_fast_mode() -> None:
    """A job faster than its provider's TPM runs at the limit, taking tokens / TPM minutes."""
    doc = json.loads(BATCH.read_text())
    doc["providers"][0]["tokens_per_minute"] = 100_000
    b = parse_batch(json.dumps(doc))
    mini = next(m for m in b.problem.activities[0].modes if m.label == "openai/gpt-4o-mini")
    assert mini.duration == 21 and mini.renewable[1] == 100_000


def test_injected_cost_function_prices_models_without_override() -> None:
    """Without an explicit price the injected catalog function decides the mode cost."""
    doc = json.loads(BATCH.read_text())
    del doc["models"][2]["price"]
    seen: list[tuple[str, str, TokenUsage]] = []

    def cost_of(provider: str, model: str, usage: TokenUsage) -> int:
        seen.append((provider, model, usage))
        return 7 * usage.input_tokens

    b = parse_batch(json.dumps(doc), cost_of=cost_of)
    fast = next(m for m in b.problem.activities[2].modes if m.label == "acme/fast-1")
    assert fast.cost == 7 * 800_000 and ("acme", "fast-1", TokenUsage(800_000, 20_000)) in seen


def test_unknown_price_names_the_model_line() -> None:
    """A model the catalog cannot price is an error that names the model's line."""
    doc = json.loads(BATCH.read_text())
    del doc["models"][2]["price"]
    text = json.dumps(doc, indent=2)
    with pytest.raises(ParseError, match="no price for acme/fast-1") as err:
        parse_batch(text, cost_of=lambda *_: None)
    assert err.value.line is not None and '"fast-1"' in text.splitlines()[err.value.line - 1]


def test_bad_json_and_unknown_dependency_name_their_lines() -> None:
    """Syntax errors report the JSON line; an unknown dependency reports the job's line."""
    with pytest.raises(ParseError) as err:
        parse_batch('{\n  "jobs": [\n    {"id": "a",,}\n  ]\n}', source="b.json")
    assert err.value.line == 3 and "b.json:3" in str(err.value)
    text = BATCH.read_text().replace('"depends_on": ["eval"]', '"depends_on": ["nope"]')
    with pytest.raises(ParseError, match="unknown job 'nope'") as err:
        parse_batch(text)
    assert err.value.line is not None and '"grade"' in text.splitlines()[err.value.line - 1]


def test_budget_below_cheapest_plan_is_infeasible() -> None:
    """A budget under the sum of the cheapest modes is reported as infeasible."""
    doc = json.loads(BATCH.read_text())
    doc["budget_usd"] = 0.2
    with pytest.raises(InfeasibleError, match="below the cheapest plan"):
        check_budget(parse_batch(json.dumps(doc)))


def test_batch_solve_returns_feasible_pick_and_a_real_front() -> None:
    """Solving a batch gives a feasible within-budget pick and a mutually non-dominated front."""
    b = read_batch(BATCH)
    r = Scheduler().solve_batch(b, SolveSettings(max_schedules=3000, time_limit=30, seed=5))
    assert r.success and r.schedule is not None
    for s in r.front:
        assert check_schedule(b.problem, s.starts, s.modes) == []
    f = np.array([s.objectives for s in r.front])
    assert len(find_non_dominated(f)) == len(r.front) and len(r.front) >= 2
    assert r.schedule.tardiness == min(s.tardiness for s in r.front)
    assert 0 < r.hypervolume <= 1.1**3


def test_default_cost_uses_price_catalog_when_installed() -> None:
    """Without overrides the catalog prices gpt-4o-mini as its quote says."""
    from llm_cost_tracker import pricing

    doc = json.loads(BATCH.read_text())
    del doc["models"][0]["price"]
    b = parse_batch(json.dumps(doc))
    catalog = pricing.PriceCatalog.load()
    q = catalog.quote(provider="openai", model="gpt-4o-mini", at_ns=1748736000 * 10**9,
                      usage=TokenUsage(input_tokens=2_000_000, output_tokens=100_000))
    assert q is not None, "the bundled catalog prices gpt-4o-mini"
    mini = next(m for m in b.problem.activities[0].modes if m.label == "openai/gpt-4o-mini")
    assert mini.cost == q.cost_pusd
