"""``demo``: send a few realistic LLM spans to a running service, so a newcomer sees costs at once."""

from __future__ import annotations

import argparse
import random
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="send sample LLM spans (every dialect) to a running service",
                       description="Export sample spans over OTLP/gRPC to a running `llm-cost-tracker run`: "
                                   "GenAI, OpenLLMetry and OpenInference dialects, several models, services "
                                   "and tenants, and one model the catalog does not know.")
    p.add_argument("--endpoint", default="127.0.0.1:4317", help="OTLP/gRPC HOST:PORT (default 127.0.0.1:4317)")
    p.add_argument("--spans", type=int, default=200, help="how many LLM spans (default 200)")
    p.add_argument("--auth-token", help="bearer token, if the service requires one")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_demo)


_CALLS = (
    ("genai", "openai", "gpt-4o-mini"), ("genai", "openai", "gpt-4o"), ("genai", "anthropic", "claude-sonnet-4-5"),
    ("legacy", "openai", "gpt-4.1-mini"), ("openinference", "anthropic", "claude-haiku-4-5"),
    ("genai", "gcp.gemini", "gemini-2.5-flash"), ("genai", "openai", "my-finetuned-model"),
)


def _demo(args: argparse.Namespace) -> int:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from llm_cost_tracker.testing import (
        genai_attributes,
        legacy_attributes,
        make_request,
        make_span,
        openinference_attributes,
    )

    rng = random.Random(args.seed)
    by_resource: dict[tuple[str, str], list[Span]] = {}
    for _ in range(args.spans):
        dialect, provider, model = rng.choice(_CALLS)
        inp, out = rng.randint(200, 8000), rng.randint(20, 1200)
        cached = rng.choice((0, 0, inp // 2))
        if dialect == "genai":
            attrs = genai_attributes(model, provider, inp, out, cache_read=cached)
        elif dialect == "legacy":
            attrs = legacy_attributes(model, provider, inp, out, cache_read=cached)
        else:
            attrs = openinference_attributes(model, provider, inp, out, cache_read=cached)
        key = (rng.choice(("checkout", "support-bot", "search")), rng.choice(("acme", "globex")))
        by_resource.setdefault(key, []).append(make_span(attrs, name=f"chat {model}"))
    metadata = (("authorization", f"Bearer {args.auth_token}"),) if args.auth_token else ()
    # opentelemetry-proto's *_pb2_grpc modules are generated without type annotations
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(args.endpoint))  # type: ignore[no-untyped-call]
    try:
        for (service, tenant), spans in by_resource.items():
            stub.Export(make_request(spans, {"service.name": service, "tenant.id": tenant}),
                        metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        print(f"llm-cost-tracker: export to {args.endpoint} failed: {exc.code().name}: {exc.details()}",
              file=sys.stderr)
        return 1
    print(f"sent {args.spans} LLM spans to {args.endpoint}; see the spend now on /metrics and with "
          "`llm-cost-tracker report` (it asks the running service)")
    return 0
