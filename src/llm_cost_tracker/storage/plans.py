"""Scheduler queries on the store: span speeds to plan with, planned jobs, and planned against actual.

One small module so the scheduler's services read and write the store through the existing client
(clickhouse-connect, embedded chDB or a server) without SQL of their own, and so ``report --by
job-batch`` and the ``schedule_job_actuals`` view (migration 0008) share one query shape. Values are
always bound as query parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["DEFAULT_JOB_ID_ATTRIBUTE", "PlanJob", "SpeedSamples", "batch_totals", "planned_vs_actual",
           "save_plan_jobs", "speed_samples"]

DEFAULT_JOB_ID_ATTRIBUTE = "llm_cost_tracker.job_id"
PLAN_COLUMNS = ["batch_id", "name", "tenant", "source", "job", "job_id", "model", "tier", "input_tokens",
                "output_tokens", "planned_start_seconds", "planned_seconds", "planned_cost_usd", "planned_at"]


@dataclass(frozen=True, slots=True)
class SpeedSamples:
    """Token counts and durations of recent successful spans of one provider/model (newest first)."""

    input_tokens: list[int]
    output_tokens: list[int]
    seconds: list[float]


OFFLINE_TIERS = ("batch", "batches", "flex")
"""Service-tier values of calls that wait in a provider's queue: their durations say nothing of online speed."""


def speed_samples(client: Any, provider: str, model: str, since_ns: int, tenant: str | None = None,
                  limit: int = 5000, tier_attributes: Sequence[str] = ()) -> SpeedSamples:
    """The newest ``limit`` spans of ``provider``/``model`` since ``since_ns`` with both token counts and a duration.

    The model matches the requested or the answering model name. Failed calls (status ERROR), spans
    marked ``duplicate`` and spans whose ``tier_attributes`` name an offline tier (:data:`OFFLINE_TIERS`)
    are left out. ``tenant``: only that tenant's spans (None: every tenant's).
    """
    where = ["provider = {p:String}", "(request_model = {m:String} OR model = {m:String})",
             "timestamp >= fromUnixTimestamp64Nano({since:Int64})", "duration_ns > 0", "input_tokens > 0",
             "output_tokens > 0", "status_code != 2", "pricing_status != 'duplicate'",
             "NOT arrayExists(k -> has({offline:Array(String)}, lower(attributes[k])), {tiers:Array(String)})"]
    params: dict[str, Any] = {"p": provider, "m": model, "since": since_ns, "limit": limit,
                              "offline": list(OFFLINE_TIERS), "tiers": list(tier_attributes)}
    if tenant is not None:
        where.append("tenant = {tenant:String}")
        params["tenant"] = tenant
    rows = client.query(f"SELECT input_tokens, output_tokens, duration_ns FROM llm_spans WHERE {' AND '.join(where)} "
                        "ORDER BY timestamp DESC LIMIT {limit:UInt32}", parameters=params).result_rows
    return SpeedSamples([int(r[0]) for r in rows], [int(r[1]) for r in rows], [int(r[2]) / 1e9 for r in rows])


@dataclass(frozen=True, slots=True)
class PlanJob:
    """One planned job as stored in ``schedule_jobs``."""

    batch_id: str
    name: str
    tenant: str
    source: str
    job: str
    job_id: str
    model: str
    tier: str
    input_tokens: int
    output_tokens: int
    planned_start_seconds: float
    planned_seconds: float
    planned_cost_usd: Decimal
    planned_at: datetime

    def row(self) -> list[Any]:
        return [getattr(self, c) for c in PLAN_COLUMNS]


def save_plan_jobs(client: Any, jobs: Sequence[PlanJob], token: str) -> None:
    """Insert the planned jobs of one batch; the same ``token`` again is a no-op (deduplication)."""
    if jobs:
        client.insert("schedule_jobs", [j.row() for j in jobs], column_names=PLAN_COLUMNS,
                      settings={"insert_deduplicate": 1, "insert_deduplication_token": token})


def _matched(expr: str) -> str:
    return f"{expr}If(a.{{col}}, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant))"


_JOBS_SQL = """
SELECT j.batch_id AS batch_id, j.name AS name, j.tenant AS tenant, j.job AS job, j.job_id AS job_id,
       j.model AS model, j.tier AS tier, j.planned_start_seconds AS planned_start_seconds,
       j.planned_seconds AS planned_seconds, j.planned_cost_usd AS planned_cost_usd,
       {spans} AS spans, {unpriced} AS unpriced_spans, {cost} AS actual_cost_usd,
       {first} AS first_start_ns, {last} AS last_end_ns
FROM (SELECT * FROM schedule_jobs FINAL WHERE {where}) AS j
LEFT JOIN
(
    SELECT attributes[{{key:String}}] AS span_job_id, tenant AS span_tenant, count() AS span_count,
           countIf(cost_usd IS NULL) AS span_unpriced, sum(ifNull(cost_usd, toDecimal128(0, 12))) AS span_cost,
           min(toUnixTimestamp64Nano(timestamp)) AS span_first_ns,
           max(toUnixTimestamp64Nano(timestamp) + toInt64(duration_ns)) AS span_last_ns
    FROM llm_spans
    WHERE timestamp >= (SELECT min(planned_at) FROM schedule_jobs WHERE {where}) - INTERVAL 1 DAY
      AND attributes[{{key:String}}] IN (SELECT job_id FROM schedule_jobs WHERE {where})
      AND pricing_status != 'duplicate'
    GROUP BY span_job_id, span_tenant
) AS a ON a.span_job_id = j.job_id
GROUP BY batch_id, name, tenant, job, job_id, model, tier, planned_start_seconds, planned_seconds, planned_cost_usd
ORDER BY batch_id, planned_start_seconds, job
"""


def planned_vs_actual(client: Any, key: str = DEFAULT_JOB_ID_ATTRIBUTE, batch_id: str | None = None,
                      tenant: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Planned and actual cost and duration of every planned job (spans matched by attribute ``key``).

    Only spans from a day before the earliest selected plan on are read (the table's partitions and
    sort key prune the rest): a job's calls come after its plan, give or take clock skew.

    ``actual_cost_usd`` is exact (Decimal) and None while no span matched; ``unpriced_spans`` counts
    matched spans the catalog could not price (their cost is not in ``actual_cost_usd``).
    """
    where, params = ["1"], {"key": key}
    if batch_id is not None:
        where.append("batch_id = {batch:String}")
        params["batch"] = batch_id
    if tenant is not None:
        where.append("tenant = {tenant:String}")
        params["tenant"] = tenant
    if since is not None:
        where.append("planned_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    sql = _JOBS_SQL.format(where=" AND ".join(where), spans=_matched("sum").format(col="span_count"),
                           unpriced=_matched("sum").format(col="span_unpriced"),
                           cost=_matched("sum").format(col="span_cost"), first=_matched("min").format(col="span_first_ns"),
                           last=_matched("max").format(col="span_last_ns"))
    result = client.query(sql, parameters=params)
    out = []
    for values in result.result_rows:
        row = dict(zip(result.column_names, values, strict=True))
        spans = int(row.pop("spans"))
        first, last = int(row.pop("first_start_ns")), int(row.pop("last_end_ns"))
        row["spans"] = spans
        row["unpriced_spans"] = int(row["unpriced_spans"])
        row["planned_cost_usd"] = Decimal(row["planned_cost_usd"])
        row["actual_cost_usd"] = Decimal(row["actual_cost_usd"]) if spans else None
        row["actual_seconds"] = (last - first) / 1e9 if spans else None
        row["first_start_ns"], row["last_end_ns"] = (first, last) if spans else (None, None)
        out.append(row)
    return out


def batch_totals(jobs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per batch: planned and actual cost, planned makespan and the time from first span start to last end."""
    by: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by.setdefault(job["batch_id"], []).append(job)
    out = []
    for batch_id, rows in by.items():
        seen = [r for r in rows if r["spans"]]
        out.append({
            "batch_id": batch_id, "name": rows[0]["name"], "tenant": rows[0]["tenant"], "jobs": len(rows),
            "jobs_seen": len(seen), "spans": sum(r["spans"] for r in rows),
            "unpriced_spans": sum(r["unpriced_spans"] for r in rows),
            "planned_cost_usd": sum((r["planned_cost_usd"] for r in rows), Decimal(0)),
            "actual_cost_usd": sum((r["actual_cost_usd"] for r in seen), Decimal(0)) if seen else None,
            "planned_seconds": max(r["planned_start_seconds"] + r["planned_seconds"] for r in rows),
            "actual_seconds": (max(r["last_end_ns"] for r in seen) - min(r["first_start_ns"] for r in seen)) / 1e9
            if seen else None,
        })
    return out
