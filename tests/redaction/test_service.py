"""End to end: the real service does not store a prompt's e-mail address or API key in clear."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

EMAIL = "maria.rossi@example.com"
API_KEY = "sk-proj-" + "Zq8rT2" * 10
PROMPT = json.dumps([{"role": "user", "parts": [{"type": "text", "content":
                      f"Hi, I'm {EMAIL}. Why does OpenAI(api_key='{API_KEY}') return 401?"}]}])


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for svc in started:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.stop()


def _send_and_read(svc: ServiceProcess) -> tuple[str, str]:
    """Send one span carrying the prompt; return the /metrics text and every stored column as JSON."""
    attrs = {**genai_attributes(), "gen_ai.input.messages": PROMPT, "gen_ai.output.messages": f"Dear {EMAIL}",
             "gen_ai.input.custom_field": EMAIL, "app.debug": f"called with {API_KEY}"}
    with grpc.insecure_channel(svc.endpoint) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)  # /readyz can answer before gRPC listens
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request([make_span(attrs)]), timeout=30)
    metrics = svc.metrics()
    assert svc.stop() == 0
    rows = svc.sql("SELECT * FROM llm_spans")
    assert len(rows) == 1
    return metrics, json.dumps(rows)


def test_default_config_stores_no_prompt_email_or_key(tmp_path: Path, services: list[ServiceProcess]) -> None:
    """Under the default configuration neither the e-mail nor the API key reaches the table; usage is priced."""
    svc = ServiceProcess(tmp_path / "store")
    services.append(svc.start())
    metrics, stored = _send_and_read(svc)
    assert EMAIL not in stored and API_KEY not in stored and "Zq8rT2" not in stored
    row = json.loads(stored)[0]
    assert "gen_ai.input.messages" not in row["attributes"]
    assert row["attributes"]["app.debug"] == "called with <OPENAI_KEY>"
    assert row["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert row["input_tokens"] == 1000 and row["pricing_status"] != "unpriced"
    assert 'llm_redactions_total{detector="content",mode="drop"} 2.0' in metrics
    assert 'llm_redactions_total{detector="unknown_content",mode="drop"} 1.0' in metrics
    assert 'llm_redactions_total{detector="openai_key",mode="mask"} 1.0' in metrics
    assert EMAIL not in metrics and API_KEY not in metrics


def test_mask_config_keeps_text_with_placeholders(tmp_path: Path, services: list[ServiceProcess]) -> None:
    """With content_mode = "mask" the prompt is stored with <EMAIL> and <OPENAI_KEY> in place of the values."""
    config = tmp_path / "lct.toml"
    config.write_text('[redaction]\ncontent_mode = "mask"\n')
    svc = ServiceProcess(tmp_path / "store", "--config", str(config))
    services.append(svc.start())
    _, stored = _send_and_read(svc)
    assert EMAIL not in stored and API_KEY not in stored
    row = json.loads(stored)[0]
    assert "I'm <EMAIL>. Why does OpenAI(api_key='<OPENAI_KEY>')" in row["attributes"]["gen_ai.input.messages"]
    assert "gen_ai.input.custom_field" not in row["attributes"]  # unknown content key: fails closed


def test_hash_mode_without_key_refuses_to_start(tmp_path: Path) -> None:
    """The service exits with the problem named when hash mode is configured without a key."""
    config = tmp_path / "lct.toml"
    config.write_text('[redaction]\ncontent_mode = "hash"\n')
    svc = ServiceProcess(tmp_path / "store", "--config", str(config))
    with pytest.raises(RuntimeError, match="redaction_hmac_key"):
        svc.start(timeout=60)
    svc.stop()
