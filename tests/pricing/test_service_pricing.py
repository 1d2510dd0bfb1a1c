"""End to end through the real service (subprocess, chDB): reported fallback, image tokens, partial, sync."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_cost_tracker.cli import main
from llm_cost_tracker.testing import ServiceProcess, genai_attributes

BUNDLED_OPENAI = Path(__file__).parents[2] / "src" / "llm_cost_tracker" / "pricing" / "data" / "openai.json"


def test_service_prices_every_unit_reports_and_uses_synced_prices(tmp_path: Path) -> None:
    """One service run: an unknown model with a reported cost is stored 'reported' with that cost (fallback on);
    gpt-image-1 costs $0.16665; a search without a price is 'partial' and counted by reason; a synced price
    (recorded in the data dir before the start) prices new spans; a reported 0 is stored as NULL; the one warning
    for an unknown model says "did you mean"."""
    data_dir = tmp_path / "store"
    doc = json.loads(BUNDLED_OPENAI.read_text())
    entry = doc["models"]["gpt-4o-mini"]
    entry["versions"][0]["rates"][0]["input"] = "0.3"
    source = tmp_path / "list.json"
    source.write_text(json.dumps({"schema_version": 1, "provider": "openai", "models": {"gpt-4o-mini": entry}}))
    assert main(["pricing", "sync", "--from", str(source), "--data-dir", str(data_dir)]) == 0
    config = tmp_path / "lct.toml"
    config.write_text(f'[pricing]\nreported_cost_fallback = true\nsync_url = "{source.as_uri()}"\n')
    svc = ServiceProcess(data_dir, "--config", str(config), "--ack", "stored").start()  # metrics count stored spans
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=svc.endpoint, insecure=True)))
        tracer = provider.get_tracer("test")
        spans = {
            "reported": {**genai_attributes("totally-unknown-model-x", "openai", 10, 10), "gen_ai.usage.cost": 0.0123},
            "zero": {**genai_attributes("another-unknown-model", "openai", 10, 10), "gen_ai.usage.cost": 0.0},
            "image": genai_attributes("gpt-image-1", "openai", 50, 4160),
            "search": {**genai_attributes("gpt-4o", "openai", 100, 100), "gen_ai.usage.web_search_requests": 1},
            "synced": genai_attributes("gpt-4o-mini", "openai", 1_000_000, 0),
            "typo": genai_attributes("gtp-4o-mini", "openai", 10, 10),
        }
        for name, attrs in spans.items():
            with tracer.start_as_current_span(name, attributes=attrs):
                pass
        assert provider.force_flush(30_000)
        provider.shutdown()
        metrics = svc.metrics()
    finally:
        assert svc.stop() == 0
    warning = next(line for line in svc.log().splitlines() if "gtp-4o-mini" in line)
    assert json.loads(warning)["did_you_mean"].startswith("gpt-4o-mini")
    assert 'llm_unpriced_spans_total{model="gpt-4o",provider="openai",reason="missing:per_search"} 1.0' in metrics
    assert "llm_price_catalog_age_seconds " in metrics
    rows = {r["span_name"]: r for r in svc.sql(
        "SELECT span_name, pricing_status, toString(cost_usd) AS cost, toString(reported_cost_usd) AS reported, "
        "attributes['llm_cost_tracker.pricing.missing'] AS missing, price_version FROM llm_spans")}
    assert rows["reported"]["pricing_status"] == "reported" and Decimal(rows["reported"]["cost"]) == Decimal("0.0123")
    assert rows["zero"]["pricing_status"] == "unpriced" and rows["zero"]["cost"] is None
    assert rows["zero"]["reported"] is None
    assert rows["image"]["pricing_status"] == "priced" and Decimal(rows["image"]["cost"]) == Decimal("0.16665")
    assert rows["search"]["pricing_status"] == "partial" and rows["search"]["missing"] == "per_search"
    assert Decimal(rows["synced"]["cost"]) == Decimal("0.3") and rows["synced"]["price_version"].startswith("sync-")
