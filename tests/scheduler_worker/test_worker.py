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


def test_a_malformed_batch_gets_an_error_result_naming_the_line_and_the_worker_carries_on(
        worker_settings: Settings) -> None:
    bad = batch_text("broken").replace('"input_tokens": 800000', '"input_tokens": -5')
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if '"id": "eval"' in text)
    produce(worker_settings, [("good-1", batch_text().encode()), ("bad", bad.encode()),
                              ("not-json", b'{"jobs": [\n  {"id": "a",,}\n]}'), ("good-2", batch_text().encode())])
    run_burst(worker_settings)
    published = results(worker_settings)
    assert sorted(published) == ["bad", "good-1", "good-2", "not-json"]
    error = published["bad"][0]
    assert error["status"] == "error" and error["result"] is None
    assert error["error"].startswith(f"batch bad:{line}: job eval: input_tokens")
    assert published["not-json"][0]["error"].startswith("batch not-json:2: invalid JSON")
    assert published["good-1"][0]["status"] == published["good-2"][0]["status"] == "done"
    stored = dict(rows(worker_settings, "SELECT batch_id, status FROM schedules FINAL"))
    assert stored == {"good-1": "done", "bad": "error", "not-json": "error", "good-2": "done"}


class _CrashBeforeCommit(SchedulerWorker):
    """Publishes every result, then dies before committing (as a kill between publish and commit)."""

    async def _commit(self, offsets: dict[Any, int]) -> None:
        return None


def test_a_batch_redelivered_after_publish_without_commit_is_not_stored_twice(worker_settings: Settings) -> None:
    produce(worker_settings, [(f"r{i}", batch_text(f"r{i}").encode()) for i in range(3)])
    crashed = _CrashBeforeCommit(worker_settings, burst=True)
    crashed.start()
    try:
        assert crashed.wait(45)
    finally:
        crashed.stop()
    again = run_burst(worker_settings)  # same group, nothing committed: everything is redelivered
    assert again.processed == 3
    assert again.metrics.reused._value.get() == 3  # answered from the stored rows, not solved again
    published = results(worker_settings)
    for i in range(3):
        first, second = published[f"r{i}"]
        assert first == second  # the redelivered answer is the stored one, byte for byte
    # no duplicate visible row, even without FINAL
    assert rows(worker_settings, "SELECT batch_id, count() FROM schedules GROUP BY batch_id ORDER BY batch_id") == [
        ("r0", 1), ("r1", 1), ("r2", 1)]
    third = run_burst(worker_settings)  # committed now: nothing left
    assert third.processed == 0


def test_a_repeated_insert_of_the_same_answer_is_a_no_op(worker_settings: Settings) -> None:
    from llm_cost_tracker.services.scheduler import Outcome, ScheduleStore
    from llm_cost_tracker.storage.migrate import migrate

    client = connect(worker_settings)
    try:
        migrate(client)
        store = ScheduleStore(client)
        outcome = Outcome("dup", "abc", "kafka", "error", error="x")
        store.save(outcome)
        store.save(outcome)  # a second worker racing on the same redelivered batch
        assert client.query("SELECT count() FROM schedules WHERE batch_id = 'dup'").result_rows == [(1,)]
        found = store.find("dup", "abc")
        assert found is not None and found.to_json() == outcome.to_json()
        assert store.find("dup", "other") is None
    finally:
        client.close()


def test_the_worker_plans_with_the_same_inputs_as_the_service(worker_settings: Settings, store: Any,
                                                              tmp_path: Any) -> None:
    """A Kafka batch naming its tenant, without prices or throughput: the user's price file with that tenant's
    discount, speeds fitted from the spans stored for that tenant, and a named budget's remainder."""
    import datetime as dt
    from decimal import Decimal

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."openai/gpt-4o-mini"]\ninput = "0.20"\noutput = "0.80"\n\n'
                      '[[discounts]]\ntenant = "acme"\npercent = "10"\n')
    config = tmp_path / "lct.toml"
    config.write_text('[[budgets]]\nname = "acme-monthly"\nlimit_usd = 2\nperiod = "month"\n'
                      '[budgets.scope]\ntenant = "acme"\n')
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    spans = []
    for i in range(12):  # acme's calls at 4,000 / 80 tokens per second; another tenant's much slower
        tin, tout = 1000 + 300 * i, 100 + 50 * (i % 5)
        for tenant, scale in (("acme", 1), ("globex", 10)):
            spans.append([now + dt.timedelta(seconds=i), tenant, f"t{i}{tenant}", "openai", "gpt-4o-mini",
                          "gpt-4o-mini", tin, tout, (tin * 250_000 + tout * 12_500_000) * scale, 0, "priced",
                          Decimal("0.5") if tenant == "acme" and i == 0 else Decimal("0.001")])
    store.insert("llm_spans", spans, column_names=[
        "timestamp", "tenant", "span_id", "provider", "request_model", "response_model", "input_tokens",
        "output_tokens", "duration_ns", "status_code", "pricing_status", "cost_usd"])
    doc = {"name": "kafka-loop", "tenant": "acme", "budget": {"name": "acme-monthly"},
           "models": [{"provider": "openai", "model": "gpt-4o-mini"}],
           "jobs": [{"id": "extract", "input_tokens": 200000, "output_tokens": 20000}]}
    settings = worker_settings.replace(pricing_file=str(prices), config_file=str(config))
    produce(settings, [("loop", json.dumps(doc).encode())])
    run_burst(settings)
    [answer] = results(settings)["loop"]
    assert answer["status"] == "done", answer
    inputs = answer["result"]["inputs"]
    model = inputs["models"]["openai/gpt-4o-mini"]
    assert model["measured_spans"] == 12 and abs(model["input_tokens_per_second"] - 4000) < 1e-3, model
    assert abs(model["output_tokens_per_second"] - 80) < 1e-6, model
    left = Decimal(2) - Decimal("0.5") - 11 * Decimal("0.001")
    assert Decimal(str(inputs["budget"]["remaining_usd"])) == left, inputs
    [job] = answer["result"]["schedule"]["jobs"]
    assert job["cost_pusd"] == (200_000 * 200_000 + 20_000 * 800_000) * 9 // 10
    assert rows(settings, "SELECT job_id, tier, planned_cost_usd FROM schedule_jobs FINAL") == [
        ("loop/extract", "standard", Decimal(job["cost_pusd"]) / 10**12)]
