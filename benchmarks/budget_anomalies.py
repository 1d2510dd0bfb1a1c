"""Anomaly detection and month-end forecast on synthetic hourly spend (issue 21's figures).

    .venv/bin/python benchmarks/budget_anomalies.py               # 200 series, seed 1
    .venv/bin/python benchmarks/budget_anomalies.py --series 500 --seed 7

Synthetic history: per series a base level (log-uniform, 0.5-200 USD/h at peak), office hours
(weekdays 8-18 UTC at the level, evenings 30%, nights and weekends 5-15%), multiplicative noise
(gamma, CV ~ 35%) and 20% chance of a quiet hour (0 spend) outside office hours.

1. **Anomalies.** 6 weeks per series; in weeks 5-6 (scored) spikes are injected: 3 per series at
   random hours, 1-3 hours long, adding 4-20x the series' *peak* hourly level (an agent loop). Every
   hour of weeks 5-6 is scored as the service does (the complete hour against its hour-of-week
   baseline over the previous 4 weeks, spikes in the history included). Detection rate = spikes with
   at least one flagged hour; false alarms = flagged hours outside spikes, per series-week. The same
   for a plain "last 72 hours" baseline, for comparison.
2. **Forecast.** For each series a month (4 weeks of history before it, then 30 days, level drifting
   +/-30% over the month); at days 3, 7, 14 and 21 the month-end total is projected by the straight
   line over the last 6 h (the previous forecast), by the straight line over the elapsed month, and by
   the hour-of-week model. Error = |projected - actual| / actual: median and p90 over series.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llm_cost_tracker.budgets._seasonal import (  # noqa: E402
    HOUR_NS,
    HOURS_PER_WEEK,
    AnomalyOptions,
    baseline,
    fit_seasonal,
    score_hour,
)
from llm_cost_tracker.types import PICO_PER_USD  # noqa: E402

START = 24 * 4  # hour index of a Monday 00:00 UTC (1970-01-05)


def shape(hour: int) -> float:
    day, h = (hour // 24 + 3) % 7, hour % 24  # epoch hour 0 is a Thursday
    if day >= 5:
        return 0.05 if h < 8 or h >= 20 else 0.15
    if 8 <= h < 18:
        return 1.0
    return 0.3 if 18 <= h < 23 else 0.05


def history(rng: random.Random, hours: int, level: float, drift: float = 0.0) -> dict[int, int]:
    out = {}
    for i in range(hours):
        hour = START + i
        mean = level * shape(hour) * (1 + drift * i / hours)
        if shape(hour) < 1.0 and rng.random() < 0.2:
            continue
        out[hour] = int(rng.gammavariate(8.0, mean / 8.0) * PICO_PER_USD)
    return out


def anomalies(rng: random.Random, n: int, options: AnomalyOptions) -> None:
    weeks, scored = 6, 2
    first_scored = START + (weeks - scored) * HOURS_PER_WEEK
    found = {"hour_of_week": [0, 0, 0], "recent": [0, 0, 0]}  # spikes, detected, false alarms
    for _ in range(n):
        level = 10 ** rng.uniform(-0.3, 2.3)
        series = history(rng, weeks * HOURS_PER_WEEK, level)
        # spikes in the scored weeks and one in the history (robustness)
        spikes = []
        for start in rng.sample(range(first_scored, START + weeks * HOURS_PER_WEEK - 3), 3):
            length = rng.randint(1, 3)
            spikes.append(set(range(start, start + length)))
        spikes.append({START + rng.randrange(HOURS_PER_WEEK, 3 * HOURS_PER_WEEK)})
        for spike in spikes:
            extra = int(rng.uniform(4, 20) * level * PICO_PER_USD)
            for h in spike:
                series[h] = series.get(h, 0) + extra
        in_spike = set().union(*spikes[:3])
        for kind, weeks_back in (("hour_of_week", options.weeks), ("recent", 0)):
            flagged = set()
            for hour in range(first_scored, START + weeks * HOURS_PER_WEEK):
                base = baseline(series, hour, START, weeks_back, options.recent_hours)
                if base is not None and score_hour(series.get(hour, 0), base, options)[1]:
                    flagged.add(hour)
            found[kind][0] += 3
            found[kind][1] += sum(1 for s in spikes[:3] if s & flagged)
            found[kind][2] += len(flagged - in_spike)
    for kind, (spikes_n, detected, false) in found.items():
        name = "hour-of-week median/MAD (the service)" if kind == "hour_of_week" else "last 72 h median/MAD"
        print(f"  {name:40s} detection {detected / spikes_n:6.1%} ({detected}/{spikes_n}), "
              f"false alarms {false / (n * scored):.3f} per series-week ({false} in {n * scored} series-weeks)")


def forecasts(rng: random.Random, n: int) -> None:
    month = 30 * 24
    errors: dict[str, dict[int, list[float]]] = {k: {d: [] for d in (3, 7, 14, 21)}
                                                 for k in ("line 6h", "line month", "seasonal")}
    for _ in range(n):
        level = 10 ** rng.uniform(-0.3, 2.3)
        drift = rng.uniform(-0.3, 0.3)
        past = history(rng, 4 * HOURS_PER_WEEK, level)
        body = history(random.Random(rng.random()), month, level, drift)
        series = {**past, **{h + 4 * HOURS_PER_WEEK: v for h, v in body.items()}}
        m0 = START + 4 * HOURS_PER_WEEK
        actual = sum(v for h, v in series.items() if m0 <= h < m0 + month)
        for day in (3, 7, 14, 21):
            now = m0 + day * 24 + 13  # 13:00 on that day
            spent = sum(v for h, v in series.items() if m0 <= h < now)
            last6 = sum(series.get(h, 0) for h in range(now - 6, now))
            left = m0 + month - now
            model = fit_seasonal(series, now * HOUR_NS, START)
            assert model is not None
            projected = {"line 6h": spent + last6 / 6 * left,
                         "line month": spent + spent / (now - m0) * left,
                         "seasonal": spent + model.expected(now * HOUR_NS, (m0 + month) * HOUR_NS)}
            for kind, value in projected.items():
                errors[kind][day].append(abs(value - actual) / actual)
    for kind, by_day in errors.items():
        cells = "  ".join(f"day {d:2d}: {statistics.median(v):6.1%} / {sorted(v)[int(0.9 * len(v))]:6.1%}"
                          for d, v in by_day.items())
        print(f"  {kind:11s} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    options = AnomalyOptions(min_usd_pusd=PICO_PER_USD)
    t0 = time.perf_counter()
    print(f"anomalies: {args.series} series, 6 weeks, 3 spikes each in the last 2 weeks "
          f"(z={options.z:g}, ratio={options.ratio:g}, min_usd=1)")
    anomalies(random.Random(args.seed), args.series, options)
    print(f"forecast of the month-end total, |error| median / p90 over {args.series} series:")
    forecasts(random.Random(args.seed + 1), args.series)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"({time.perf_counter() - t0:.1f} s; load average {load})")


if __name__ == "__main__":
    main()
