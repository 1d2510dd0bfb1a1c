"""Every LLM call counted once (issue 14): the same spans sent again, across a restart, and through a stalled
store with a retrying client give one row each, and llm_spans, both rollups, the spend metrics and the
budget agree; spans dated where the store cannot hold them are rejected, not answered OK and lost."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CONFIG = '''
[budget_options]
refresh_seconds = 0

[[budgets]]
name = "all"
limit_usd = 1000
period = "month"
timezone = "UTC"
'''
COST = Decimal("0.0045")
"""One gpt-4o span of genai_attributes: 1000 input tokens at $2.50/M + 200 output at $10/M."""


def export(endpoint: str, request: ExportTraceServiceRequest, timeout: float = 60) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(endpoint) as channel:
        call = channel.unary_unary(METHOD, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                   response_deserializer=ExportTraceServiceResponse.FromString)
        return call(request, timeout=timeout)  # type: ignore[no-any-return]


def spans_request(n: int) -> ExportTraceServiceRequest:
    return make_request([make_span(genai_attributes("gpt-4o")) for _ in range(n)], {"tenant.id": "acme"})


def metric(text: str, name: str) -> Decimal:
    return sum((Decimal(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)), Decimal(0))


def budget_spent(svc: ServiceProcess) -> Decimal:
    with urllib.request.urlopen(svc.http_url + "/v1/budgets/all", timeout=10) as response:
        body = json.loads(response.read())
    assert body["pending_usd"] == 0.0
    return Decimal(str(body["spent_usd"]))


def stored(svc: ServiceProcess) -> dict[str, tuple[int, Decimal]]:
    """(requests, cost) in llm_spans and both rollups (the service must be stopped), read by one ``sql`` run."""
    query = " UNION ALL ".join(
        f"SELECT '{table}' AS t, toUInt64({count}) AS n, toString(sum(cost_usd)) AS c FROM {table}"
        for table, count in (("llm_spans", "count()"), ("llm_spend_hourly", "sum(requests)"),
                             ("llm_spend_daily", "sum(requests)")))
    rows = svc.sql(query)
    assert len(rows) == 3, rows
    return {row["t"]: (int(row["n"]), Decimal(row["c"])) for row in rows}


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None, cls: type = ServiceProcess) -> Any:
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG)
    return cls(tmp_path / "store", "--config", str(config), "--ack", "stored", "--batch-age-seconds", "0.2",
               *args, env=env).start()


def test_same_export_twice_is_counted_once(tmp_path: Path) -> None:
    """A collector retry of an Export that was stored (lost response) adds no row, rollup, metric or budget spend."""
    request = spans_request(40)
    svc = start(tmp_path)
    try:
        for _ in range(2):
            response = export(svc.endpoint, request)
            assert response.partial_success.rejected_spans == 0
        metrics = svc.metrics()  # --ack stored: both Exports were written (or found written) before OK
        assert metric(metrics, "llm_cost_usd_total") == 40 * COST
        assert metric(metrics, "llm_pipeline_rows_written_total") == 40
        assert metric(metrics, "llm_pipeline_spans_deduplicated_total") == 40
        assert budget_spent(svc) == 40 * COST
    finally:
        assert svc.stop() == 0
    assert stored(svc) == {t: (40, 40 * COST) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}


def test_spans_sent_again_after_a_restart_are_counted_once(tmp_path: Path) -> None:
    """The same spans sent before and after a restart of the service (a collector's persistent queue) count once."""
    request = spans_request(25)
    first = start(tmp_path)
    try:
        export(first.endpoint, request)
        assert metric(first.metrics(), "llm_cost_usd_total") == 25 * COST
    finally:
        assert first.stop() == 0
    second = start(tmp_path)
    try:
        export(second.endpoint, request)
        export(second.endpoint, spans_request(5))
        metrics = second.metrics()
        assert metric(metrics, "llm_pipeline_spans_deduplicated_total") == 25
        assert metric(metrics, "llm_cost_usd_total") == 5 * COST  # this process stored only the 5 new spans
        assert budget_spent(second) == 30 * COST
    finally:
        assert second.stop() == 0
    assert stored(second) == {t: (30, 30 * COST) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}


class NoDacOverride(ServiceProcess):
    """The service without root's file-permission override, so a read-only data directory stalls its writes."""

    def command(self) -> list[str]:
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *super().command()]


@pytest.mark.timeout(240)
def test_stalled_store_and_a_retrying_client_store_every_span_once(tmp_path: Path) -> None:
    """--ack stored with a store that cannot be written: Exports time out UNAVAILABLE, the client retries like a
    collector, and once the store is back every span is stored, rolled up, counted and budgeted once."""
    request = spans_request(60)
    # an Export waits 1 s (not the default 5) for its spans to be stored before UNAVAILABLE: two of them time out
    svc = start(tmp_path, env={"LCT_SINK_RETRY_MAX_SECONDS": "0.5", "LCT_ACK_TIMEOUT_SECONDS": "1"}, cls=NoDacOverride)
    data = str(tmp_path / "store")
    codes: list[str] = []
    try:
        subprocess.run(["chmod", "-R", "a-w", data], check=True)
        try:
            while len(codes) < 20:
                try:
                    export(svc.endpoint, request, timeout=60)
                    codes.append("OK")
                    break
                except grpc.RpcError as exc:
                    codes.append(exc.code().name)
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                    if codes.count("UNAVAILABLE") == 2:
                        subprocess.run(["chmod", "-R", "u+w", data], check=True)
        finally:
            subprocess.run(["chmod", "-R", "u+w", data], check=True)
        assert codes[:2] == ["UNAVAILABLE", "UNAVAILABLE"] and codes[-1] == "OK", codes
        metrics = svc.metrics()
        assert metric(metrics, 'llm_pipeline_sink_errors_total') > 0  # the store really was stalled
        assert metric(metrics, "llm_pipeline_rows_written_total") == 60
        assert metric(metrics, "llm_pipeline_spans_deduplicated_total") == 60 * (len(codes) - 1)
        assert metric(metrics, "llm_cost_usd_total") == 60 * COST
        assert budget_spent(svc) == 60 * COST
    finally:
        assert svc.stop() == 0
    assert stored(svc) == {t: (60, 60 * COST) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}


def test_spans_the_store_cannot_hold_are_rejected_with_a_reason(tmp_path: Path) -> None:
    """Spans before the retention horizon, too far ahead, past 2106 or at the int64 edges are rejected in
    partial_success and counted by reason; only the spans the tables hold are stored and rolled up."""
    now = time.time_ns()
    day = 86_400 * 10**9
    starts = {
        "ok": [now, now - 399 * day, now + day // 2],
        "timestamp_before_retention": [now - 401 * day, 1],
        "timestamp_in_future": [now + 2 * day],
        "timestamp_out_of_range": [int(7_258_118_400e9)],  # 2200-01-01
        "invalid_timestamp": [2**63, 2**64 - 2],  # past what DateTime64(9) holds
    }
    spans = [make_span(genai_attributes("gpt-4o"), name="secret-span-name", start_ns=s, duration_ns=1)
             for group in starts.values() for s in group]
    svc = start(tmp_path)
    try:
        response = export(svc.endpoint, make_request(spans, {"tenant.id": "acme"}))
        assert response.partial_success.rejected_spans == 6
        message = response.partial_success.error_message
        assert "retention horizon" in message and "ahead of the receiver's clock" in message
        assert "latest the store can hold" in message and "past 2262" in message
        assert "secret-span-name" not in message
        metrics = svc.metrics()
        for reason, group in starts.items():
            if reason != "ok":
                assert metric(metrics, f'llm_pipeline_spans_rejected_total{{reason="{reason}"}}') == len(group), reason
        assert metric(metrics, "llm_pipeline_rows_written_total") == 3
        assert metric(metrics, "llm_cost_usd_total") == 3 * COST
    finally:
        assert svc.stop() == 0
    assert stored(svc) == {t: (3, 3 * COST) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}


@pytest.mark.parametrize("columnar", ["true", "false"])
def test_big_exports_through_either_path_are_counted_once(tmp_path: Path, columnar: str) -> None:
    """Requests big enough for the wire scan take the columnar path (or, switched off, the stages): the same
    Export twice and a restart still give one row per span in llm_spans and both rollups, and the metrics and
    the budget agree with them."""
    request = spans_request(300)
    assert request.ByteSize() >= 16_384  # (export.SCAN_MIN_BYTES: the wire scan reads it)
    env = {"LCT_COLUMNAR_PATH": columnar}
    first = start(tmp_path, env=env)
    try:
        for _ in range(2):
            assert export(first.endpoint, request).partial_success.rejected_spans == 0
        metrics = first.metrics()
        assert metric(metrics, "llm_cost_usd_total") == 300 * COST
        assert metric(metrics, "llm_pipeline_spans_deduplicated_total") == 300
        decided = metric(metrics, r"llm_pipeline_columnar_requests_total\{outcome=\"decided\"\}")
        assert decided == (2 if columnar == "true" else 0)
        assert budget_spent(first) == 300 * COST
    finally:
        assert first.stop() == 0
    second = start(tmp_path, env=env)
    try:
        export(second.endpoint, request)
        export(second.endpoint, spans_request(200))
        assert metric(second.metrics(), "llm_cost_usd_total") == 200 * COST
        assert budget_spent(second) == 500 * COST
    finally:
        assert second.stop() == 0
    assert stored(second) == {t: (500, 500 * COST) for t in ("llm_spans", "llm_spend_hourly", "llm_spend_daily")}
