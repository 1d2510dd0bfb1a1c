"""Hour-of-week seasonality over hourly spend: the anomaly score and the month-end forecast.

Both read an hourly series (hour index = Unix time // 3600 -> pico-USD; hours without spend are 0)
and compare an hour with the same hour of the week in earlier weeks, because LLM spend follows
office hours and weekdays: Monday 10:00 is not Sunday 03:00.

* **Anomaly**: the baseline of an hour is the median and the MAD (median absolute deviation) of the
  same hour-of-week and its two neighbours over the last ``weeks`` weeks, or, with fewer than 3 such
  weeks of history, of the last ``recent_hours`` hours. The score is ``(spend - median) /
  max(1.4826 x MAD, median / 5, min_usd / z)``; an hour is anomalous when the score reaches ``z``, the
  spend is at least ``ratio`` times the median and above every sample of the baseline. Robust: one
  earlier spike moves neither the median nor the MAD.
* **Forecast**: the expected spend of each hour left in the period is the mean of the same
  hour-of-week over the last ``weeks`` weeks, times a level factor (the last week's actual spend / its
  profile, clipped to [1/4, 4]; a week, so every hour-of-week weighs once), so a growing or shrinking
  month is followed. With less than a week of history there is no seasonal model and the straight
  line of the burn window is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median

__all__ = ["HOURS_PER_WEEK", "AnomalyOptions", "Baseline", "SeasonalModel", "baseline", "fit_seasonal",
           "score_hour"]

HOURS_PER_WEEK = 168
HOUR_NS = 3600 * 10**9
LEVEL_HOURS = HOURS_PER_WEEK
"""Hours whose actual spend over their profile gives the level factor of the forecast."""


@dataclass(frozen=True, slots=True)
class AnomalyOptions:
    """The ``[anomalies]`` table."""

    enabled: bool = True
    z: float = 6.0
    ratio: float = 3.0
    min_usd_pusd: int = 10**12
    """Smallest excess over the baseline that can be anomalous (default 1 USD in an hour)."""
    weeks: int = 4
    recent_hours: int = 72
    interval_seconds: float = 60.0
    max_series: int = 200


@dataclass(frozen=True, slots=True)
class Baseline:
    median: float
    mad: float
    samples: int
    kind: str
    """``hour_of_week`` or ``recent``."""
    highest: float = 0.0
    """The highest sample."""


def baseline(series: Mapping[int, int], hour: int, first_hour: int, weeks: int = 4,
             recent_hours: int = 72) -> Baseline | None:
    """The baseline of ``hour`` from the series' history since ``first_hour`` (None: not enough history).

    Hour-of-week samples are the same hour and its two neighbours in each of the last ``weeks`` weeks
    (up to 3 x weeks values), so one quiet or busy hour does not make the baseline.
    """
    same = [series.get(h, 0) for k in range(1, weeks + 1) for h in (hour - k * HOURS_PER_WEEK + d for d in (-1, 0, 1))
            if h >= first_hour]
    if len(same) >= 9:
        values, kind = same, "hour_of_week"
    else:
        values = [series.get(hour - k, 0) for k in range(1, recent_hours + 1) if hour - k >= first_hour]
        kind = "recent"
        if len(values) < 6:
            return None
    mid = float(median(values))
    mad = float(median(abs(v - mid) for v in values))
    return Baseline(mid, mad, len(values), kind, float(max(values)))


def score_hour(value: int, base: Baseline, options: AnomalyOptions) -> tuple[float, bool]:
    """(score, anomalous) of an hour's spend against its baseline.

    The spread is at least a fifth of the median (a near-constant history has a MAD near 0) and at
    least ``min_usd / z``; an anomalous hour also exceeds every sample of its baseline.
    """
    scale = max(1.4826 * base.mad, 0.2 * base.median, options.min_usd_pusd / options.z)
    score = (value - base.median) / scale
    return score, score >= options.z and value >= options.ratio * base.median and value > base.highest


@dataclass(frozen=True, slots=True)
class SeasonalModel:
    """Expected spend per hour-of-week (pico-USD per hour) and the current level factor."""

    profile: tuple[float, ...]
    level: float

    def expected(self, from_ns: int, to_ns: int) -> int:
        """Expected spend in ``[from_ns, to_ns)``: whole hours and the fractions of the first and last."""
        total = 0.0
        t = from_ns
        while t < to_ns:
            hour = t // HOUR_NS
            end = min(to_ns, (hour + 1) * HOUR_NS)
            total += self.profile[hour % HOURS_PER_WEEK] * (end - t) / HOUR_NS
            t = end
        return int(total * self.level)


def fit_seasonal(series: Mapping[int, int], now_ns: int, first_hour: int, weeks: int = 4) -> SeasonalModel | None:
    """The model from the complete hours before ``now_ns`` (None with less than a week of history)."""
    current = now_ns // HOUR_NS
    if current - first_hour < HOURS_PER_WEEK:
        return None
    profile = []
    for how in range(HOURS_PER_WEEK):
        # the latest complete hour with this hour-of-week, then the same hour in earlier weeks
        latest = current - 1 - ((current - 1 - how) % HOURS_PER_WEEK)
        values = [series.get(latest - k * HOURS_PER_WEEK, 0) for k in range(weeks)
                  if latest - k * HOURS_PER_WEEK >= first_hour]
        profile.append(sum(values) / len(values) if values else 0.0)
    recent = range(current - LEVEL_HOURS, current)
    expected = sum(profile[h % HOURS_PER_WEEK] for h in recent)
    actual = sum(series.get(h, 0) for h in recent)
    level = min(4.0, max(0.25, actual / expected)) if expected > 0 else 1.0
    return SeasonalModel(tuple(profile), level)
