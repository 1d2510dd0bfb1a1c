"""The scheduler worker against a real tansu broker and chDB: burst runs, errors, redelivery, SIGTERM."""

from __future__ import annotations

import json
from typing import Any

from llm_cost_tracker.config import Settings
from llm_cost_tracker.services.scheduler import SchedulerWorker
from llm_cost_tracker.storage.client import connect

from .conftest import batch_text, produce, read_all


def run_burst(settings: Settings, **kwargs: Any) -> SchedulerWorker:
    worker = SchedulerWorker(settings, burst=True, **kwargs)
    worker.start()
    try:
        assert worker.wait(45), "burst run did not drain the topic in 45 s"
    finally:
        worker.stop()
    return worker


def rows(settings: Settings, query: str) -> list[tuple[Any, ...]]:
    client = connect(settings)
    try:
        return list(client.query(query).result_rows)
    finally:
        client.close()


def results(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in read_all(settings, settings.scheduler_results_topic):
        out.setdefault(m.key.decode(), []).append(json.loads(m.value))
    return out


def test_burst_solves_each_batch_publishes_and_stores_it(worker_settings: Settings) -> None:
    produce(worker_settings, [(f"b{i}", batch_text(f"evals-{i}").encode()) for i in range(3)])
    worker = run_burst(worker_settings)
    assert worker.processed == 3
    published = results(worker_settings)
    assert sorted(published) == ["b0", "b1", "b2"]
    for key, docs in published.items():
        assert len(docs) == 1
        doc = docs[0]
        assert doc["status"] == "done" and doc["batch_id"] == key and doc["error"] is None
        assert doc["name"] == f"evals-{key[1]}"
        assert {j["id"] for j in doc["result"]["schedule"]["jobs"]} == {"extract", "summarize", "eval", "grade", "report"}
        assert doc["result"]["pareto_front"]
    stored = rows(worker_settings, "SELECT batch_id, status, source, name, makespan_seconds > 0 FROM schedules ORDER BY batch_id")
    assert stored == [(f"b{i}", "done", "kafka", f"evals-{i}", True) for i in range(3)]
