"""End to end: the OpenTelemetry SDK's OTLP/gRPC exporter (gzip) -> ``run`` -> chDB, every dialect."""

from __future__ import annotations

from decimal import Decimal

from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_cost_tracker.testing import genai_attributes, legacy_attributes, openinference_attributes

M = Decimal(1_000_000)
# List prices in USD per million tokens, written down from the providers' price pages.
GPT4O_MINI = {"input": Decimal("0.15"), "output": Decimal("0.60"), "cache_read": Decimal("0.075")}
SONNET_45 = {"input": Decimal("3"), "output": Decimal("15"), "cache_read": Decimal("0.30"),
             "cache_write": Decimal("3.75")}


def cost(prices: dict[str, Decimal], input: int, output: int, cache_read: int = 0, cache_write: int = 0) -> Decimal:
    uncached = input - cache_read - cache_write
    return (uncached * prices["input"] + output * prices["output"] + cache_read * prices.get("cache_read", 0)
            + cache_write * prices.get("cache_write", 0)) / M


def test_every_dialect_is_priced_exactly(service_factory) -> None:
    """Spans of each dialect sent by the SDK exporter are stored with exactly the expected costs after SIGTERM."""
    svc = service_factory()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "tenant.id": "acme"}))
    exporter = OTLPSpanExporter(endpoint=svc.endpoint, insecure=True, compression=Compression.Gzip)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=10_000, max_export_batch_size=512))
    tracer = provider.get_tracer("test")
    spans = {
        "genai": (genai_attributes("gpt-4o-mini", "openai", 1200, 300, cache_read=1000), 40),
        "legacy": (legacy_attributes("gpt-4o-mini", "openai", 800, 100, cache_read=512), 30),
        "openinference": (openinference_attributes("claude-sonnet-4-5-20250929", "anthropic", 5000, 400,
                                                   cache_read=4000), 20),
        "anthropic_raw": (genai_attributes("claude-sonnet-4-5-20250929", "anthropic", 20, 100, cache_read=3000,
                                           cache_write=1000), 10),
        "unpriced": (genai_attributes("totally-unknown-model-x", "openai", 10, 10), 5),
    }
    for name, (attrs, count) in spans.items():
        for _ in range(count):
            with tracer.start_as_current_span(f"chat {name}", attributes=attrs):
                pass
    with tracer.start_as_current_span("GET /health", attributes={"http.method": "GET"}):
        pass
    assert provider.force_flush(30_000)
    provider.shutdown()
    assert svc.stop() == 0

    rows = svc.sql("SELECT dialect, request_model, count() AS n, toString(sum(cost_usd)) AS cost, "
                   "countIf(pricing_status = 'unpriced') AS unpriced, sum(input_tokens) AS input, "
                   "any(tenant) AS tenant, any(service_name) AS service FROM llm_spans "
                   "GROUP BY dialect, request_model ORDER BY dialect, request_model")
    got = {(r["dialect"], r["request_model"]): r for r in rows}
    assert sum(r["n"] for r in rows) == 105  # the HTTP span is counted, not stored
    assert Decimal(got[("genai", "gpt-4o-mini")]["cost"]) == 40 * cost(GPT4O_MINI, 1200, 300, 1000)
    assert Decimal(got[("genai_legacy", "gpt-4o-mini")]["cost"]) == 30 * cost(GPT4O_MINI, 800, 100, 512)
    sonnet = got[("openinference", "claude-sonnet-4-5-20250929")]
    assert Decimal(sonnet["cost"]) == 20 * cost(SONNET_45, 5000, 400, 4000)
    raw = got[("genai", "claude-sonnet-4-5-20250929")]
    assert raw["input"] == 10 * 4020  # Anthropic's exclusive counts were summed, not double counted
    assert Decimal(raw["cost"]) == 10 * cost(SONNET_45, 4020, 100, 3000, 1000)
    unknown = got[("genai", "totally-unknown-model-x")]
    assert unknown["cost"] is None and unknown["unpriced"] == 5
    assert {r["tenant"] for r in rows} == {"acme"} and {r["service"] for r in rows} == {"checkout"}
