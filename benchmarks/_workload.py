"""Realistic GenAI span payloads for the benchmarks: a mix of providers, models, services and tenants."""

from __future__ import annotations

import os
import random

from llm_cost_tracker.testing import make_request, make_span

MODELS = [  # (provider, model, share)
    ("openai", "gpt-4o-mini", 30), ("openai", "gpt-4o", 12), ("openai", "gpt-4.1-mini", 8), ("openai", "o3-mini", 4),
    ("anthropic", "claude-sonnet-4-5-20250929", 14), ("anthropic", "claude-haiku-4-5", 8),
    ("gcp.gemini", "gemini-2.5-flash", 10), ("gcp.gemini", "gemini-2.5-pro", 4),
    ("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0", 5), ("openai", "text-embedding-3-small", 5),
]
SERVICES = ["checkout-assistant", "support-bot", "search-rerank", "doc-summarizer", "code-review", "eval-runner"]
TENANTS = [f"tenant-{i:02d}" for i in range(20)]


def span_attributes(rng: random.Random) -> dict[str, object]:
    provider, model, _ = rng.choices(MODELS, weights=[m[2] for m in MODELS])[0]
    embedding = model.startswith("text-embedding")
    inp = int(rng.lognormvariate(7, 1.2)) + 1
    out = 0 if embedding else int(rng.lognormvariate(5, 1.0)) + 1
    attrs: dict[str, object] = {
        "gen_ai.operation.name": "embeddings" if embedding else "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "server.address": "api.example.com",
        "server.port": 443,
        "gen_ai.conversation.id": f"conv-{rng.randrange(100_000)}",
        "user.id": f"user-{rng.randrange(5_000)}",
    }
    if not embedding and rng.random() < 0.4:
        attrs["gen_ai.usage.cache_read.input_tokens"] = rng.randrange(0, inp + 1)
    if model.startswith("o3") or model.endswith("pro"):
        attrs["gen_ai.usage.reasoning.output_tokens"] = rng.randrange(0, out + 1)
    return attrs


def make_payloads(count: int, spans_per_request: int = 512, seed: int = 7) -> list[bytes]:
    """``count`` serialized Export requests of ``spans_per_request`` spans each, one service and tenant each."""
    rng = random.Random(seed)
    payloads = []
    for _ in range(count):
        spans = [make_span(span_attributes(rng), name="chat", trace_id=os.urandom(16), span_id=os.urandom(8))
                 for _ in range(spans_per_request)]
        resource = {"service.name": rng.choice(SERVICES), "tenant.id": rng.choice(TENANTS),
                    "deployment.environment": "prod", "telemetry.sdk.language": "python"}
        payloads.append(make_request(spans, resource).SerializeToString())
    return payloads
