"""The answer to one task batch and where it is kept: shared by the schedules API and the Kafka worker.

Below both of them (the all-in-one service imports this, never the Kafka worker): :class:`Outcome` is
what is published, stored and returned by ``GET /v1/schedules/{id}``; :class:`ScheduleStore` keeps it in
the ``schedules`` table and its planned jobs in ``schedule_jobs`` (migration 0008), so spans carrying a
job's id can be compared with the plan (``report --by job-batch``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llm_cost_tracker.storage.plans import PlanJob, save_plan_jobs
from llm_cost_tracker.types import PICO_PER_USD

__all__ = ["STATUSES", "Outcome", "ScheduleStore", "sha256_hex"]

STATUSES = ("done", "error", "infeasible", "cancelled")


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one batch: what is published, stored and returned by ``GET /v1/schedules/{id}``."""

    batch_id: str
    input_sha256: str
    source: str
    status: str
    name: str = ""
    error: str = ""
    result: dict[str, Any] | None = None
    tenant: str = ""
    submitted_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    solved_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "status": self.status, "name": self.name,
                "error": self.error or None, "result": self.result, "source": self.source,
                "submitted_at": _iso(self.submitted_at), "solved_at": _iso(self.solved_at)}

    def message(self) -> bytes:
        """The value published on the results topic (JSON, key = batch id)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def plan_jobs(self) -> list[PlanJob]:
        """The planned jobs of a solved batch (none otherwise), as rows of ``schedule_jobs``."""
        schedule = (self.result or {}).get("schedule") if self.status == "done" else None
        if not schedule:
            return []
        return [PlanJob(self.batch_id, self.name, self.tenant, self.source, str(j["id"]), str(j["job_id"]),
                        str(j["model"]).partition("@")[0], str(j.get("tier") or "standard"),
                        int(j.get("input_tokens") or 0), int(j.get("output_tokens") or 0),
                        float(j["start_seconds"]), float(j["finish_seconds"]) - float(j["start_seconds"]),
                        Decimal(int(j["cost_pusd"])) / PICO_PER_USD, _naive(self.solved_at))
                for j in schedule.get("jobs", []) if "job_id" in j]


def _iso(dt: datetime) -> str:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_COLUMNS = ["batch_id", "input_sha256", "name", "source", "tenant", "status", "error", "result",
            "makespan_seconds", "cost_usd", "fallback", "schedules_evaluated", "solve_seconds",
            "submitted_at", "solved_at"]


class ScheduleStore:
    """The ``schedules`` and ``schedule_jobs`` tables through one clickhouse-connect client (calls serialized)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def save(self, outcome: Outcome) -> None:
        """Insert the row and its planned jobs; a repeat of the same (batch id, input) is a no-op."""
        r = outcome.result or {}
        schedule = r.get("schedule") or {}
        row = [outcome.batch_id, outcome.input_sha256, outcome.name, outcome.source, outcome.tenant,
               outcome.status, outcome.error, json.dumps(r, sort_keys=True) if outcome.result else "",
               float(r.get("makespan_seconds") or 0.0), float(schedule.get("cost_usd") or 0.0),
               r.get("fallback") or "", int(r.get("schedules_evaluated") or 0), float(r.get("seconds") or 0.0),
               _naive(outcome.submitted_at), _naive(outcome.solved_at)]
        token = f"{outcome.batch_id}/{outcome.input_sha256}/{outcome.status}"
        with self._lock:
            # jobs first: a batch whose row is stored always has its jobs (a retry re-inserts both, deduplicated)
            save_plan_jobs(self._client, outcome.plan_jobs(), token + "/jobs")
            self._client.insert("schedules", [row], column_names=_COLUMNS,
                                settings={"insert_deduplicate": 1, "insert_deduplication_token": token})

    def find(self, batch_id: str, input_sha256: str | None = None) -> Outcome | None:
        """The stored outcome of ``batch_id`` (only if its input matches ``input_sha256``, when given)."""
        query = ("SELECT batch_id, input_sha256, source, status, name, error, result, tenant, submitted_at, "
                 "solved_at FROM schedules FINAL WHERE batch_id = {id:String}")
        params: dict[str, Any] = {"id": batch_id}
        if input_sha256 is not None:
            query += " AND input_sha256 = {sha:String}"
            params["sha"] = input_sha256
        with self._lock:
            rows = self._client.query(query + " LIMIT 1", parameters=params).result_rows
        if not rows:
            return None
        bid, sha, source, status, name, error, result, tenant, submitted, solved = rows[0]
        return Outcome(bid, sha, source, status, name=name, error=error,
                       result=json.loads(result) if result else None, tenant=tenant,
                       submitted_at=_aware(submitted), solved_at=_aware(solved))


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
