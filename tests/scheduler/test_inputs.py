"""What a tracker supplies to a batch: speeds fitted from spans, batch-tier modes, a named budget's cap."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import pytest

from llm_cost_tracker.scheduler.batch import SCHEMA_PATH, parse_batch
from llm_cost_tracker.scheduler.errors import ParseError
from llm_cost_tracker.scheduler.inputs import PlanInputs, Speed, fit_speed
from llm_cost_tracker.types import PICO_PER_USD

DOC: dict[str, Any] = {
    "name": "t", "priced_at": "2025-06-01T00:00:00Z", "slot_seconds": 60,
    "models": [{"provider": "openai", "model": "gpt-4o-mini"}],
    "jobs": [{"id": "a", "input_tokens": 1_000_000, "output_tokens": 100_000}],
}


def spans(n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    tin = rng.integers(500, 8000, n).astype(float)
    tout = rng.integers(50, 800, n).astype(float)
    return tin, tout, tin / a + tout / b


def test_fit_recovers_both_rates_and_ignores_a_few_slow_calls() -> None:
    tin, tout, d = spans(200, 4000, 80)
    speed = fit_speed(tin, tout, d)
    assert speed is not None and speed.method == "fit" and speed.spans == 200
    assert speed.input_tokens_per_second == pytest.approx(4000, rel=1e-6)
    assert speed.output_tokens_per_second == pytest.approx(80, rel=1e-6)
    d[:10] *= 20  # ten calls stuck behind a retry
    slow = fit_speed(tin, tout, d)
    assert slow is not None
    assert slow.input_tokens_per_second == pytest.approx(4000, rel=0.02)
    assert slow.output_tokens_per_second == pytest.approx(80, rel=0.02)


def test_one_prompt_answer_mix_splits_time_evenly_so_a_typical_call_is_predicted_at_its_length() -> None:
    tin = np.full(9, 2000.0)
    tout = np.full(9, 200.0)
    d = np.linspace(2.0, 4.0, 9)
    speed = fit_speed(tin, tout, d)
    assert speed is not None and speed.method == "even_split"
    predicted = 2000 / speed.input_tokens_per_second + 200 / speed.output_tokens_per_second
    assert predicted == pytest.approx(float(np.median(d)))


def test_no_usable_span_is_no_speed() -> None:
    assert fit_speed(np.array([100.0]), np.array([0.0]), np.array([1.0])) is None
    assert fit_speed(np.array([]), np.array([]), np.array([])) is None


def test_a_measured_speed_fills_what_the_batch_leaves_out_and_a_stated_one_wins() -> None:
    doc = json.loads(json.dumps(DOC))
    doc["models"][0]["output_tokens_per_second"] = 100
    asked: list[tuple[str, str]] = []

    def speed_of(provider: str, model: str) -> Speed:
        asked.append((provider, model))
        return Speed(5000.0, 50.0, 42, "fit", 168.0)

    batch = parse_batch(json.dumps(doc), inputs=PlanInputs(speed_of=speed_of))
    note = batch.inputs["models"]["openai/gpt-4o-mini"]
    assert asked == [("openai", "gpt-4o-mini")]
    assert note["throughput_from"] == "batch and spans" and note["measured_spans"] == 42
    assert note["input_tokens_per_second"] == 5000 and note["output_tokens_per_second"] == 100
    standard = batch.problem.activities[0].modes[0]
    assert standard.duration == 20  # 1e6/5000 + 1e5/100 = 1,200 s = 20 slots of 60 s
    with pytest.raises(ParseError, match="no stored spans of openai/gpt-4o-mini"):
        parse_batch(json.dumps(DOC), inputs=PlanInputs(speed_of=lambda p, m: None))


def test_the_batch_tier_is_a_24_hour_mode_at_the_catalogs_batch_price() -> None:
    doc = json.loads(json.dumps(DOC))
    doc["models"][0].update(input_tokens_per_second=4000, output_tokens_per_second=80)
    [act] = parse_batch(json.dumps(doc)).problem.activities
    standard, batch = act.modes
    assert batch.label == "openai/gpt-4o-mini@batch" and batch.duration == 1440 and not any(batch.renewable)
    assert batch.cost * 2 == standard.cost  # the bundled catalog: batch at half price
    doc["service_tiers"] = ["standard"]
    assert len(parse_batch(json.dumps(doc)).problem.activities[0].modes) == 1


def test_a_named_budget_caps_below_budget_usd_and_an_unknown_one_is_refused() -> None:
    doc = json.loads(json.dumps(DOC))
    doc["models"][0].update(input_tokens_per_second=4000, output_tokens_per_second=80)
    doc.update(budget_usd=5, budget={"name": "team"})
    left = {"team": 3 * PICO_PER_USD}

    def budget_left(name: str) -> int:
        if name not in left:
            raise LookupError(f"unknown budget {name!r} (known: team)")
        return left[name]

    batch = parse_batch(json.dumps(doc), inputs=PlanInputs(budget_left=budget_left))
    assert batch.problem.nonrenewable[0].capacity == 3 * PICO_PER_USD and batch.inputs["budget_cap_usd"] == 3
    doc["budget"] = {"name": "other"}
    with pytest.raises(ParseError, match="unknown budget 'other'"):
        parse_batch(json.dumps(doc), inputs=PlanInputs(budget_left=budget_left))
    with pytest.raises(ParseError, match="named budgets need the tracker"):
        parse_batch(json.dumps(doc))


def test_a_tracker_batch_validates_against_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    doc = {**DOC, "budget": {"name": "team"}, "service_tiers": ["standard"], "tenant": "acme"}
    jsonschema.Draft202012Validator(schema).validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**DOC, "service_tiers": ["batch"]})


def test_a_batch_may_leave_at_most_32_models_to_be_measured() -> None:
    """Each measured model is a store query while the caller waits: the 33rd is refused, naming the limit."""
    doc = json.loads(json.dumps(DOC))
    doc["models"] = [{"provider": "p", "model": f"m{i}"} for i in range(33)]
    doc["jobs"][0]["models"] = ["p/m0"]
    calls: list[str] = []

    def speed_of(provider: str, model: str) -> Speed:
        calls.append(model)
        return Speed(1000.0, 10.0, 5, "fit")

    with pytest.raises(ParseError, match="model p/m32: at most 32 models"):
        parse_batch(json.dumps(doc), cost_of=lambda *_: 1, inputs=PlanInputs(speed_of=speed_of))
    assert len(calls) == 32
