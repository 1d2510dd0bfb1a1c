"""What a task batch may leave to the tracker: prices, measured speeds and a named budget's remainder.

The batch reader (:mod:`llm_cost_tracker.scheduler.batch`) asks a :class:`PlanInputs` for whatever
the batch does not state itself. The service builds one from its own price catalog (user price file,
tenant prices, discounts), the spans it stored and its budgets (``services/schedule_inputs.py``); the
command line without a tracker uses the bundled catalog alone. The engine itself stays free of the
store and the services: it sees only these callables.

Speed from spans: a span's duration covers reading the prompt and writing the answer, and the plan's
model is ``seconds = input_tokens / input_rate + output_tokens / output_rate`` per request stream.
:func:`fit_speed` fits exactly that to the spans by least absolute deviations (a median regression,
robust to a few slow calls). When the spans do not mix prompt and answer sizes enough to tell the two
rates apart, it splits each span's time evenly between reading and writing and takes the medians, so a
typical span is still predicted at its measured duration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from llm_cost_tracker.types import TokenUsage

__all__ = ["TIER_WINDOW_SECONDS", "BudgetFn", "PlanInputs", "Speed", "SpeedFn", "TierCostFn", "catalog_tier_cost", "fit_speed"]

TierCostFn = Callable[[str, str, TokenUsage, str], "int | None"]
"""``cost_of(provider, model, usage, tier)`` -> pico-USD, or None when that tier has no price."""

TIER_WINDOW_SECONDS = {"batch": 86_400}
"""Completion window of each asynchronous tier: OpenAI's Batch API and Anthropic's Message Batches
both promise results within 24 h (Gemini's batch mode targets 24 h too). A tier mode is planned at
this bound, the worst case the provider commits to."""

MIN_RATIO_SPREAD = 1.5
"""Prompt/answer size ratios must differ by this factor (10th to 90th percentile) to fit two rates."""


@dataclass(frozen=True, slots=True)
class Speed:
    """Measured throughput of one provider/model per request stream, and what it rests on."""

    input_tokens_per_second: float
    output_tokens_per_second: float
    spans: int
    method: str
    """``fit`` (median regression of duration on both token counts) or ``even_split``."""
    window_hours: float = 0.0


SpeedFn = Callable[[str, str], "Speed | None"]
"""``speed_of(provider, model)`` -> the measured speed, or None when no usable spans are stored."""

BudgetFn = Callable[[str], int]
"""``budget_left(name)`` -> pico-USD left now; raises LookupError with a message for an unknown name."""


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """The tracker's side of a batch: where prices, speeds and budgets come from.

    Args:
        costs: ``costs(at_ns)`` -> the tier-aware cost function in force at ``priced_at``.
        speed_of: measured speeds (None: every model must state its throughput).
        budget_left: remainders of named budgets (None: ``"budget": {"name": ...}`` is refused).
        tenant: whose prices apply (``""``: list prices and tenant-free discounts).
        priced_with: a short description of the catalog, reported in the plan.
    """

    costs: Callable[[int], TierCostFn] | None = None
    speed_of: SpeedFn | None = None
    budget_left: BudgetFn | None = None
    tenant: str = ""
    priced_with: str = "bundled catalog"


FloatArray = npt.NDArray[np.float64]


def catalog_tier_cost(catalog: Any, at_ns: int, tenant: str = "") -> TierCostFn:
    """Tier-aware cost function over a :class:`~llm_cost_tracker.pricing.PriceCatalog`.

    None when the model, the tier or a price at ``at_ns`` is unknown, and when the quote misses a
    dimension the usage needs (never a silent zero).
    """

    def cost_of(provider: str, model: str, usage: TokenUsage, tier: str) -> int | None:
        attributes = None if tier == "standard" else {"llm_cost_tracker.service_tier": tier}
        quote = catalog.quote(provider=provider, model=model, at_ns=at_ns, usage=usage, attributes=attributes,
                              tenant=tenant)
        if quote is None or quote.service_tier != tier or quote.missing:
            return None
        return int(quote.cost_pusd)

    return cost_of


def fit_speed(input_tokens: FloatArray, output_tokens: FloatArray, seconds: FloatArray,
              window_hours: float = 0.0) -> Speed | None:
    """The speed the spans show, or None when they cannot give both rates (see the module docstring)."""
    tin, tout, d = (np.asarray(x, dtype=np.float64) for x in (input_tokens, output_tokens, seconds))
    keep = (d > 0) & (tin > 0) & (tout > 0)
    tin, tout, d = tin[keep], tout[keep], d[keep]
    n = int(d.size)
    if n == 0:
        return None
    ratio = tin / tout
    lo, hi = np.percentile(ratio, [10, 90])
    if n >= 4 and hi >= MIN_RATIO_SPREAD * lo:
        coef = _median_regression(np.column_stack([tin, tout]), d)
        if coef is not None and coef[0] > 0 and coef[1] > 0:
            return Speed(1.0 / coef[0], 1.0 / coef[1], n, "fit", window_hours)
    half = d / 2.0
    return Speed(float(np.median(tin / half)), float(np.median(tout / half)), n, "even_split", window_hours)


def _median_regression(x: FloatArray, y: FloatArray, rounds: int = 60) -> tuple[float, float] | None:
    """Least absolute deviations by iteratively reweighted least squares (no intercept)."""
    try:
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        floor = 1e-9 * float(np.median(np.abs(y)))
        for _ in range(rounds):
            w = 1.0 / np.maximum(np.abs(y - x @ coef), floor)
            xw = x * w[:, None]
            new = np.linalg.solve(x.T @ xw, xw.T @ y)
            if np.allclose(new, coef, rtol=1e-10, atol=0.0):
                coef = new
                break
            coef = new
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(coef)):
        return None
    return float(coef[0]), float(coef[1])
