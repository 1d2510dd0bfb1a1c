"""OpenLLMetry's OpenAI instrumentation, with the real openai client against a local fake endpoint."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

openai = pytest.importorskip("openai")
instrumentation = pytest.importorskip("opentelemetry.instrumentation.openai")

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

USAGE = {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
         "prompt_tokens_details": {"cached_tokens": 1536}, "completion_tokens_details": {"reasoning_tokens": 0}}


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers chat completions like the OpenAI API, with usage including cached tokens."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_760_000_000,
            "model": body["model"] + "-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "The answer is 4."}}],
            "usage": USAGE,
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openllmetry_spans_are_priced(service_factory, fake_openai) -> None:
    """Chat calls instrumented by OpenLLMetry end up in the table priced with cached tokens at the cache rate."""
    svc = service_factory()
    provider = TracerProvider(resource=Resource.create({"service.name": "assistant"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=svc.endpoint, insecure=True)))
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
        for _ in range(3):
            out = client.chat.completions.create(model="gpt-4o-mini",
                                                 messages=[{"role": "user", "content": "2+2?"}])
            assert out.choices[0].message.content == "The answer is 4."
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    assert svc.stop() == 0
    rows = svc.sql("SELECT response_model, pricing_model, pricing_status, input_tokens, cache_read_tokens, "
                   "output_tokens, toString(cost_usd) AS cost FROM llm_spans")
    assert len(rows) == 3
    row = rows[0]
    assert row["response_model"] == "gpt-4o-mini-2024-07-18"
    assert row["pricing_status"] == "priced"
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (2000, 1536, 300)
    # gpt-4o-mini list prices: $0.15/M input, $0.075/M cached input, $0.60/M output
    expected = (Decimal(464) * Decimal("0.15") + 1536 * Decimal("0.075") + 300 * Decimal("0.60")) / 1_000_000
    assert Decimal(row["cost"]) == expected
