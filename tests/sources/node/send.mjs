// Sends LLM spans with the OTel JS SDK's OTLP/HTTP exporter (JSON or protobuf) and prints the trace ids.
// usage: node send.mjs URL json|proto TOKEN SERVICE COUNT
import { TracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";

const [url, encoding, token, service, count] = process.argv.slice(2);
const Exporter = encoding === "proto" ? ProtoExporter : JsonExporter;
const exporter = new Exporter({ url, headers: { authorization: `Bearer ${token}` }, compression: "gzip" });
const provider = new TracerProvider({
  resource: resourceFromAttributes({ "service.name": service }),
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
});
const tracer = provider.getTracer("lct-node-test");
const ids = [];
for (let i = 0; i < Number(count); i++) {
  const span = tracer.startSpan("chat gpt-4o-mini", { attributes: {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000 } });
  ids.push(`${span.spanContext().traceId}:${span.spanContext().spanId}`);
  span.end();
}
await provider.forceFlush();
await provider.shutdown();
console.log(JSON.stringify(ids));
