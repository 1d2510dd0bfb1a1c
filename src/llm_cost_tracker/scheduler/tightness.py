"""How tight an instance's renewable resources are, read from the instance itself.

The elitist search's j120 gap to the best known schedules sits mostly on the instances whose
resources are scarcest (docs/scheduler.md: PSPLIB's resource strength 0.1 holds about half of it),
and a setting can suit those and not the others. A rule that depends on tightness must read it from
the problem, never from a file name or a benchmark group, so it applies as well to a task batch or
any other instance.

The measure is PSPLIB's resource strength (Kolisch, Sprecher & Drexl 1995), per renewable resource
``(capacity - r_min) / (r_max - r_min)``: ``r_min`` is the largest demand of a single activity (the
least capacity that makes the instance feasible), ``r_max`` the peak demand of the earliest-start
schedule that ignores resources (above it the resource never binds). 0 is as tight as feasible, 1 and
above never binding. The instance's value is its tightest resource's. Shortest modes throughout (the
least demanding valid mode for ``r_min``), which on single-mode problems is the only mode.
"""

from __future__ import annotations

import numpy as np

from llm_cost_tracker.scheduler.problem import Arrays

__all__ = ["resource_strength"]


def resource_strength(a: Arrays) -> float:
    """The smallest resource strength over the renewable resources (1.0 when there are none or no
    resource is ever contended)."""
    if a.cap.size == 0 or a.n == 0:
        return 1.0
    big = np.iinfo(np.int64).max
    shortest_mode = np.where(a.valid, a.dur, big).argmin(axis=1)
    dur = a.dur[np.arange(a.n), shortest_mode]
    dem = a.dem[np.arange(a.n), shortest_mode]  # [n, R]
    least = np.where(a.valid[:, :, None], a.dem, big).min(axis=1)  # [n, R] least demand over valid modes
    r_min = np.where(least == big, 0, least).max(axis=0)
    es = np.zeros(a.n + 1, np.int64)
    ef = np.zeros(a.n + 1, np.int64)
    for j in np.argsort(a.rank):
        es[j] = ef[a.pred_pad[j]].max(initial=0)
        ef[j] = es[j] + dur[j]
    span = int(ef.max(initial=0)) + 1
    profile = np.zeros((span + 1, a.cap.size), np.int64)
    np.add.at(profile, es[: a.n], dem)
    np.add.at(profile, ef[: a.n], -dem)
    r_max = np.cumsum(profile, axis=0).max(axis=0)
    room = r_max - r_min
    rs = np.where(room > 0, (a.cap - r_min) / np.maximum(room, 1), 1.0)
    return float(rs.mean())
