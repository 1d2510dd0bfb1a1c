"""The ``scheduler`` command as a process (SIGTERM mid-solve) and the schedules API of ``run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue.kafka_testing import TansuBroker
from llm_cost_tracker.testing import ServiceProcess, free_port, http_json

from .conftest import batch_text, produce, read_all


def metric(url: str, name: str, token: str | None = None) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(url + "/metrics")
    if token:  # with tokens configured, /metrics needs an admin or metrics token
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def start_worker(tmp_path: Path, tansu: TansuBroker, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log_path = tmp_path / f"scheduler-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    cmd = [sys.executable, "-m", "llm_cost_tracker.cli", "scheduler", "--kafka-bootstrap", tansu.bootstrap,
           "--data-dir", str(tmp_path / "store"), "--http", f"127.0.0.1:{port}", "--log-format", "json",
           "--no-kafka-idempotence", "--kafka-session-timeout-ms", "1000", "--kafka-heartbeat-interval-ms", "200",
           "--kafka-partitions", "1", *args]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}", log_path


def wait_for(what: str, check: Any, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"worker exited early:\n{log_path.read_text()[-3000:]}"
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} not within {timeout}s:\n{log_path.read_text()[-3000:]}")


@pytest.mark.serial  # the stop time is bounded
@pytest.mark.parametrize(("shutdown", "answered"), [(1.0, False), (15.0, True)], ids=["cancelled", "finished"])
def test_sigterm_while_solving_cancels_or_finishes_within_the_shutdown_time(
        tmp_path: Path, tansu: TansuBroker, worker_settings: Settings, shutdown: float, answered: bool) -> None:
    """A 4 s solve: SIGTERM 1 s in with 1 s to spare cancels it (redelivered later); with 15 s it finishes."""
    settings = worker_settings.replace(kafka_partitions=1)
    produce(settings, [("slow", batch_text("slow").encode())])
    proc, url, log_path = start_worker(tmp_path, tansu, "--max-schedules", "100000000", "--time-limit", "4",
                                       "--shutdown-seconds", str(shutdown))
    try:
        wait_for("solve in progress", lambda: metric(url, "llm_cost_schedule_in_progress") == 1, proc, log_path)
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(shutdown + 15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    assert took < shutdown + 8, f"stopped after {took:.1f}s with a {shutdown}s shutdown time"
    published = [json.loads(m.value) for m in read_all(settings, settings.scheduler_results_topic)]
    if answered:
        assert [d["status"] for d in published] == ["done"]
        assert '"finished_in_hand": true' in log
    else:
        assert published == []  # not published, not committed: the next worker gets it
        assert "cancelled, they will be redelivered" in log
        proc, url, log_path = start_worker(tmp_path, tansu, "--burst", "--max-schedules", "200")
        assert proc.wait(60) == 0, log_path.read_text()[-3000:]
        published = [json.loads(m.value) for m in read_all(settings, settings.scheduler_results_topic)]
        assert [(d["batch_id"], d["status"]) for d in published] == [("slow", "done")]


def call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = None) -> tuple[int, Any]:
    return http_json(url, body, method, token)


def test_embedded_schedules_api(tmp_path: Path) -> None:
    """POST a batch to ``run``, poll GET until done; bad batches get 400, missing tokens 401."""
    service = ServiceProcess(tmp_path / "svc", "--auth-token", "s3cret",
                             env={"LCT_SCHEDULER_MAX_SCHEDULES": "500", "LCT_SCHEDULER_TIME_LIMIT_SECONDS": "5"})
    service.start()
    base = service.http_url + "/v1/schedules"
    try:
        assert call(base, "POST", batch_text().encode())[0] == 401
        status, doc = call(base + "/whatever")
        assert status == 401 and "Bearer" in doc["error"]

        bad = batch_text().replace('"output_tokens": 30000', '"output_tokens": "many"')
        line = next(i for i, text in enumerate(bad.splitlines(), 1) if '"id": "grade"' in text)
        status, doc = call(base, "POST", bad.encode(), token="s3cret")
        assert status == 400
        assert doc["error"] == f"not a valid task batch: body:{line}: job grade: output_tokens must be a non-negative integer"
        status, doc = call(base, "POST", b"{not json", token="s3cret")
        assert status == 400 and "body:1: invalid JSON" in doc["error"]
        status, doc = call(base, "POST", b"[" * 100_000 + b"]" * 100_000, token="s3cret")
        assert status == 400 and "nested too deep" in doc["error"] and "Recursion" not in doc["error"], doc

        status, doc = call(base, "POST", batch_text("api-batch").encode(), token="s3cret")
        assert status == 202 and doc["status"] == "queued", doc
        batch_id = doc["batch_id"]
        deadline = time.monotonic() + 30
        while True:
            status, doc = call(f"{base}/{batch_id}", token="s3cret")
            assert status == 200, doc
            if doc["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert doc["status"] == "done" and doc["name"] == "api-batch" and doc["error"] is None, doc
        result = doc["result"]
        assert {j["id"] for j in result["schedule"]["jobs"]} == {"extract", "summarize", "eval", "grade", "report"}
        assert result["pareto_front"] and all("cost_usd" in p for p in result["pareto_front"])
        assert result["schedules_evaluated"] <= 500
        assert call(f"{base}/nope", token="s3cret")[0] == 404
        assert metric(service.http_url, "llm_cost_scheduler_solves_total", "s3cret") >= 1
        assert metric(service.http_url, "llm_cost_schedule_batches_total", "s3cret") == 1
    finally:
        assert service.stop() == 0, service.log()
