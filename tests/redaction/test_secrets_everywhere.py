"""No secret leaves in clear from anywhere a client can put one: span, service, tenant, model, provider
and operation names, attribute keys, card numbers in ordinary values; not in the table, the rollups,
/metrics, the log or the Export answer (the probe is benchmarks/attack_secrets.py's)."""

from __future__ import annotations

import json

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, leaked_secrets, secret_probe_request


def test_a_secret_anywhere_is_never_stored_labelled_logged_or_echoed(tmp_path) -> None:
    """Every secret of the probe is missing from the answer, /metrics, the log, llm_spans and both rollups;
    the span is still stored once, unpriced, under its placeholders."""
    service = ServiceProcess(tmp_path / "store").start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        answer = stub.Export(secret_probe_request(), timeout=30)
        assert answer.partial_success.rejected_spans == 1  # the span with a bad id
        assert leaked_secrets(answer.partial_success.error_message) == []
        metrics = service.metrics()
        assert "llm_tokens_total" in metrics and leaked_secrets(metrics) == []
    finally:
        assert service.stop() == 0
    assert leaked_secrets(service.log()) == []
    rows = service.sql("SELECT * FROM llm_spans")
    assert len(rows) == 1
    row = rows[0]
    assert row["request_model"] == "<OPENAI_KEY>" and row["provider"] == "<google_api_key>"
    assert row["operation"] == "<anthropic_key>" and row["tenant"] == "<AWS_ACCESS_KEY>"
    assert row["span_name"] == "chat <GITHUB_TOKEN>" and row["pricing_status"] == "unpriced"
    assert "<CREDIT_CARD>" in json.dumps(row)
    assert leaked_secrets(json.dumps(rows)) == []
    rollups = ("llm_spend_hourly", "llm_spend_daily")
    everything = service.sql(" UNION ALL ".join(  # every String column of the rollups, one sql run for both
        f"SELECT '{table}' AS t, tenant, service_name, provider, model FROM {table}" for table in rollups))
    for table in rollups:
        keys = [{k: v for k, v in r.items() if k != "t"} for r in everything if r["t"] == table]
        assert keys and leaked_secrets(json.dumps(keys)) == [], (table, keys)
