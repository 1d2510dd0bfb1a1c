"""Drive one real instrumentation against the fake provider, in a process of its own.

Usage: ``python drive.py SCENARIO --provider URL (--otlp HOST:PORT | --record FILE)``.

Instrumentations patch the client libraries globally, so each scenario runs in a fresh process; the
script imports only the OpenTelemetry SDK and the libraries under test (not llm_cost_tracker), so it
also runs in OpenLIT's own small venv. With ``--otlp`` every span is exported on its own as it ends
(SimpleSpanProcessor): the spans of one call reach the service in separate Export requests, the hard
case for call identity. With ``--record`` the spans are written as JSON (tests/matrix/testdata).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

CHAT = [{"role": "user", "content": "What is 2+2?"}]
SYSTEM = [{"type": "text", "text": "You are a calculator. " * 200, "cache_control": {"type": "ephemeral"}}]
OPENAI_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
ANTHROPIC_MODEL = "claude-sonnet-4-5"


def openai_calls(url: str, responses: bool = True, embeddings: bool = True) -> None:
    """Chat, streamed chat with and without usage, Responses API, embeddings."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT)  # type: ignore[arg-type]
    for _ in client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT, stream=True,  # type: ignore
                                            stream_options={"include_usage": True}):
        pass
    for _ in client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT, stream=True):  # type: ignore
        pass
    if responses:
        client.responses.create(model=OPENAI_MODEL, input="What is 2+2?")
    if embeddings:
        client.embeddings.create(model=EMBEDDING_MODEL, input="hello world")


def anthropic_calls(url: str) -> None:
    """A cache write, a cache read, and a streamed cache read."""
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)
    for which in ("cache-write", "cache-read"):
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, system=SYSTEM,  # type: ignore[arg-type]
                               messages=CHAT, metadata={"user_id": which})  # type: ignore[arg-type]
    for _ in client.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, system=SYSTEM,  # type: ignore
                                    messages=CHAT, metadata={"user_id": "cache-read"}, stream=True):  # type: ignore
        pass


def langchain_calls(url: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=OPENAI_MODEL, base_url=url + "/v1", api_key="sk-test", max_retries=0)  # type: ignore
    llm.invoke("What is 2+2?")


def _instrument(provider: Any, names: Sequence[str]) -> None:
    for name in names:
        if name == "openai_v2":
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

            V2().instrument(tracer_provider=provider)
        elif name == "openllmetry_openai":
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument(tracer_provider=provider)
        elif name == "openllmetry_anthropic":
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

            AnthropicInstrumentor().instrument(tracer_provider=provider)
        elif name == "openinference_openai":
            from openinference.instrumentation.openai import OpenAIInstrumentor as OIOpenAI

            OIOpenAI().instrument(tracer_provider=provider)
        elif name == "openinference_anthropic":
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as OIAnthropic

            OIAnthropic().instrument(tracer_provider=provider)
        elif name == "openinference_langchain":
            from openinference.instrumentation.langchain import LangChainInstrumentor

            LangChainInstrumentor().instrument(tracer_provider=provider)
        else:
            raise SystemExit(f"unknown instrumentation {name}")


SCENARIOS: dict[str, tuple[tuple[str, ...], Callable[[str], None], tuple[str, ...]]] = {
    # scenario: (instrumentations, calls, distributions whose versions the recording notes)
    "openai_v2": (("openai_v2",), openai_calls, ("opentelemetry-instrumentation-openai-v2", "openai")),
    "openllmetry_openai": (("openllmetry_openai",), openai_calls, ("opentelemetry-instrumentation-openai", "openai")),
    "openllmetry_anthropic": (("openllmetry_anthropic",), anthropic_calls,
                              ("opentelemetry-instrumentation-anthropic", "anthropic")),
    "openinference_openai": (("openinference_openai",), openai_calls,
                             ("openinference-instrumentation-openai", "openai")),
    "openinference_anthropic": (("openinference_anthropic",), anthropic_calls,
                                ("openinference-instrumentation-anthropic", "anthropic")),
    "openinference_langchain": (("openinference_langchain", "openllmetry_openai"), langchain_calls,
                                ("openinference-instrumentation-langchain", "opentelemetry-instrumentation-openai",
                                 "langchain-openai", "openai")),
    "anthropic_sdk": ((), anthropic_calls, ("anthropic",)),
    "openlit": ((), lambda url: (openai_calls(url, responses=False), anthropic_calls(url)),
                ("openlit", "openai", "anthropic")),
}


class JsonRecorder:
    """A span exporter that keeps every span as a JSON-able dict (for tests/matrix/testdata)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        for s in spans:
            scope = s.instrumentation_scope
            self.spans.append({
                "name": s.name, "trace_id": f"{s.context.trace_id:032x}", "span_id": f"{s.context.span_id:016x}",
                "parent_span_id": f"{s.parent.span_id:016x}" if s.parent else "",
                "start_time_unix_nano": s.start_time, "end_time_unix_nano": s.end_time,
                "scope": {"name": scope.name if scope else "", "version": (scope.version or "") if scope else ""},
                "resource": {k: _plain(v) for k, v in s.resource.attributes.items()},
                "attributes": {k: _plain(v) for k, v in (s.attributes or {}).items()},
            })
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def _plain(value: Any) -> Any:
    """A JSON-able attribute value; long texts (prompts) are cut, the recordings are about usage."""
    if isinstance(value, str) and len(value) > 200:
        return value[:60] + f"...[{len(value)} chars, cut in the recording]"
    return list(value) if isinstance(value, tuple) else value


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--provider", required=True)
    parser.add_argument("--otlp")
    parser.add_argument("--record")
    parser.add_argument("--tenant", default="")
    args = parser.parse_args(argv)
    names, calls, dists = SCENARIOS[args.scenario]
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = {"service.name": f"matrix-{args.scenario}"}
    if args.tenant:
        resource["tenant.id"] = args.tenant
    recorder = JsonRecorder()
    if args.scenario == "openlit":
        # OpenLIT as its users start it: it builds the TracerProvider (resource telemetry.sdk.name=openlit)
        # and its exporter, which speaks OTLP/HTTP unless told grpc before the import
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(f"{k}={v}" for k, v in resource.items())
        if args.record:
            os.environ["OTEL_TRACES_EXPORTER"] = "none"
        import openlit

        openlit.init(otlp_endpoint=None if args.record else f"http://{args.otlp}", disable_batch=True,
                     disable_events=True, disable_metrics=True, application_name=resource["service.name"])
        provider = trace.get_tracer_provider()
        if args.record:
            provider.add_span_processor(SimpleSpanProcessor(recorder))  # type: ignore[attr-defined]
    else:
        provider = TracerProvider(resource=Resource.create(resource))
        if args.record:
            provider.add_span_processor(SimpleSpanProcessor(recorder))  # type: ignore[arg-type]
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.otlp, insecure=True)))
        trace.set_tracer_provider(provider)  # the anthropic SDK emits its own spans through the global provider
    _instrument(provider, names)
    calls(args.provider)
    provider.shutdown()  # type: ignore[attr-defined]
    if args.record:
        versions = {d: metadata.version(d) for d in (*dists, "opentelemetry-sdk")}
        with open(args.record, "w", encoding="utf-8") as f:
            json.dump({"scenario": args.scenario, "versions": versions, "spans": recorder.spans}, f, indent=1,
                      sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
