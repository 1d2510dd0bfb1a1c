"""Helpers for tests and benchmarks: build OTLP payloads of LLM spans in each dialect.

Integration tests use real chDB, real grpc and real OTel clients; these helpers only make the
inputs, they fake nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlencode

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from llm_cost_tracker.types import AttributeColumns, SpanRecord

__all__ = [
    "SECRETS", "SPAN_START_NS", "AttributeValue", "RecordingPublisher", "ServiceProcess", "any_value", "free_port",
    "genai_attributes", "http_get", "http_json", "key_values", "leaked_secrets", "legacy_attributes", "make_request",
    "make_span", "openinference_attributes", "port_block", "recorded_request", "rotel_agent_path", "rotel_command",
    "secret_probe_request", "span_record", "wait_listening",
]

AttributeValue = str | bool | int | float | bytes | list[Any] | Mapping[str, Any]

SPAN_START_NS = 1_750_000_000_000_000_000
"""Default start of :func:`span_record` (2025-06-15 15:06:40 UTC): a time every bundled price covers."""
_record_ids = itertools.count(1)


def span_record(**fields: Any) -> SpanRecord:
    """A :class:`SpanRecord` for tests, with ``fields`` (any SpanRecord field, by name) over the defaults.

    Defaults: fresh trace and span ids from a process-wide counter (two records never share the store's
    ``(trace_id, span_id)`` key by accident), no parent, start :data:`SPAN_START_NS`, 1 s, service 'svc',
    span 'chat', status 0, no attributes, no usage. A ``cost_pusd`` given without a ``pricing_status``
    sets it: 'priced' for a cost, 'unpriced' for None, so a test span never claims a status its cost
    contradicts (the zero rule: no $0 stands in for an unknown cost).
    """
    i = next(_record_ids)
    values: dict[str, Any] = {
        "trace_id": f"{i:032x}", "span_id": f"{i:016x}", "parent_span_id": "", "start_time_ns": SPAN_START_NS,
        "duration_ns": 1_000_000_000, "service_name": "svc", "span_name": "chat", "status_code": 0,
        "resource_attributes": {}, "attributes": {},
    }
    if "cost_pusd" in fields and "pricing_status" not in fields:
        values["pricing_status"] = "priced" if fields["cost_pusd"] is not None else "unpriced"
    values.update(fields)
    return SpanRecord(**values)


def any_value(value: AttributeValue) -> AnyValue:
    """An OTLP AnyValue holding ``value``."""
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Mapping):
        out.kvlist_value.values.extend(key_values(value))
    else:
        out.array_value.values.extend(any_value(v) for v in value)
    return out


def key_values(attributes: Mapping[str, AttributeValue]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def make_span(attributes: Mapping[str, AttributeValue], *, name: str = "chat", trace_id: bytes | None = None,
              span_id: bytes | None = None, start_ns: int | None = None, duration_ns: int = 1_500_000_000,
              status_code: int = 0) -> Span:
    """A finished span with ``attributes``; ids are random unless given."""
    start = time.time_ns() if start_ns is None else start_ns
    span = Span(trace_id=trace_id or os.urandom(16), span_id=span_id or os.urandom(8), name=name,
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + duration_ns)
    span.attributes.extend(key_values(attributes))
    span.status.code = status_code  # type: ignore[assignment]
    return span


def make_request(spans: Iterable[Span], resource: Mapping[str, AttributeValue] | None = None) -> ExportTraceServiceRequest:
    """An Export request carrying ``spans`` under one resource (service.name defaults to 'test-service')."""
    request = ExportTraceServiceRequest()
    rs: ResourceSpans = request.resource_spans.add()
    rs.resource.attributes.extend(key_values({"service.name": "test-service", **(resource or {})}))
    rs.scope_spans.add().spans.extend(spans)
    return request


def genai_attributes(model: str = "gpt-4o-mini", provider: str = "openai", input_tokens: int = 1000,
                     output_tokens: int = 200, cache_read: int = 0, cache_write: int = 0,
                     reasoning: int = 0, operation: str = "chat") -> dict[str, AttributeValue]:
    """Attributes of a span in the current GenAI conventions (cache tokens inside input_tokens)."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    if cache_read:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cache_read
    if cache_write:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = cache_write
    if reasoning:
        attrs["gen_ai.usage.reasoning.output_tokens"] = reasoning
    return attrs


def legacy_attributes(model: str = "gpt-4o-mini", system: str = "openai", prompt_tokens: int = 1000,
                      completion_tokens: int = 200, cache_read: int = 0) -> dict[str, AttributeValue]:
    """Attributes of a span in the older GenAI conventions as OpenLLMetry emits them."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.system": system,
        "llm.request.type": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.prompt_tokens": prompt_tokens,
        "gen_ai.usage.completion_tokens": completion_tokens,
        "llm.usage.total_tokens": prompt_tokens + completion_tokens,
    }
    if cache_read:
        attrs["gen_ai.usage.cache_read_input_tokens"] = cache_read
    return attrs


def openinference_attributes(model: str = "gpt-4o-mini", provider: str = "openai", prompt: int = 1000,
                             completion: int = 200, cache_read: int = 0) -> dict[str, AttributeValue]:
    """Attributes of an OpenInference LLM span."""
    attrs: dict[str, AttributeValue] = {
        "openinference.span.kind": "LLM",
        "llm.provider": provider,
        "llm.system": provider,
        "llm.model_name": model,
        "llm.token_count.prompt": prompt,
        "llm.token_count.completion": completion,
        "llm.token_count.total": prompt + completion,
    }
    if cache_read:
        attrs["llm.token_count.prompt_details.cache_read"] = cache_read
    return attrs


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """``request`` in the OTLP/JSON encoding (protobuf's JSON mapping with hex trace and span ids), as the
    OTLP/HTTP JSON exporters send it."""
    import base64
    import json

    from google.protobuf import json_format

    document: dict[str, Any] = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def recorded_request(path: str | os.PathLike[str]) -> ExportTraceServiceRequest:
    """The Export request a recording of real spans (tests/matrix/testdata, written by tests/matrix/drive.py)
    makes: spans grouped by resource and instrumentation scope, ids, times and attributes as recorded."""
    with open(path, encoding="utf-8") as f:
        spans = json.load(f)["spans"]
    request = ExportTraceServiceRequest()
    groups: dict[tuple[str, str, str], Any] = {}
    for s in spans:
        resource_key = json.dumps(s["resource"], sort_keys=True)
        key = (resource_key, s["scope"]["name"], s["scope"]["version"])
        if key not in groups:
            rs = request.resource_spans.add()
            rs.resource.attributes.extend(key_values(s["resource"]))
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = s["scope"]["name"], s["scope"]["version"]
            groups[key] = ss
        span = groups[key].spans.add(trace_id=bytes.fromhex(s["trace_id"]), span_id=bytes.fromhex(s["span_id"]),
                                     parent_span_id=bytes.fromhex(s["parent_span_id"]), name=s["name"],
                                     kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=s["start_time_unix_nano"],
                                     end_time_unix_nano=s["end_time_unix_nano"])
        span.attributes.extend(key_values(s["attributes"]))
    return request


class RecordingPublisher:
    """A Publisher that keeps what it is handed and acknowledges at once: the Export handler's tests
    look at the records a request produced without a queue or a store behind it."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None,
                columns: AttributeColumns | None = None) -> Future[None]:
        self.records.extend(records)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def close(self) -> None:
        pass


_PORTS_BELOW_EPHEMERAL = 8192
"""Ports :func:`free_port` takes from, just below the kernel's ephemeral range."""


def port_block(worker: int, workers: int, ephemeral_low: int) -> range:
    """The ports :func:`free_port` hands out in pytest-xdist worker ``worker`` of ``workers`` (0 of 1 outside
    pytest), on a machine whose ephemeral ports start at ``ephemeral_low``: a share of the
    :data:`_PORTS_BELOW_EPHEMERAL` ports under that range, one share per worker (empty where the range starts
    too low to leave room: ``free_port`` then asks the kernel)."""
    low = max(1024, ephemeral_low - _PORTS_BELOW_EPHEMERAL)
    share = (ephemeral_low - low) // max(1, workers)
    if share < 64:
        return range(0)
    start = low + min(worker, workers - 1) * share
    return range(start, start + share)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: ask the kernel


def _worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        return int(name.removeprefix("gw")), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        return 0, 1


_ports = port_block(*_worker(), _ephemeral_low())
_next_port = itertools.count(int.from_bytes(os.urandom(2), "little"))
"""Where this process is in its block (from a random place: a benchmark beside a test worker seldom meets it)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and that nothing else is likely to take before the caller's
    child binds it.

    Why not simply ``bind(0)``: the kernel then hands out a port of its ephemeral range, the range every
    outgoing connection on the machine takes its source port from (the suite's clients open many), and the
    port is free again once this socket closes: a connection could take it before the child binds it (the
    likely cause of a collector-hop test's one failure under load). Ports below that range are never taken
    that way, and each pytest-xdist worker has its own share of them (:func:`port_block`), handed out in
    turn, each checked free.
    """
    import socket

    for _ in range(len(_ports)):
        port = _ports[next(_next_port) % len(_ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or a closed connection's TIME_WAIT: the next one
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """``llm-cost-tracker run`` as a child process on free 127.0.0.1 ports, for tests and benchmarks.

    Args:
        data_dir: the embedded store's directory.
        args: extra command-line flags.
        env: extra environment variables.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *args: str, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = str(data_dir)
        self.grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.http_port = free_port()
        self.sql_port = free_port()
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.log_path = os.path.join(self.data_dir, f"service-{self.grpc_port}.log")
        self.scheme = "https" if "--tls-cert-file" in self.args else "http"
        self.proc: Any = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def otlp_http_url(self) -> str:
        """The OTLP/HTTP traces endpoint (``POST``)."""
        return f"{self.scheme}://127.0.0.1:{self.otlp_http_port}/v1/traces"

    @property
    def sql_url(self) -> str:
        """The SQL endpoint (ClickHouse HTTP interface) of the embedded store."""
        return f"{self.scheme}://127.0.0.1:{self.sql_port}"

    def command(self) -> list[str]:
        import sys

        sql = [] if "--sql-http" in self.args else ["--sql-http", f"127.0.0.1:{self.sql_port}"]
        otlp_http = [] if "--otlp-http" in self.args else ["--otlp-http", f"127.0.0.1:{self.otlp_http_port}"]
        return [sys.executable, "-m", "llm_cost_tracker.cli", "run", "--otlp-grpc", self.endpoint,
                "--http", f"127.0.0.1:{self.http_port}", "--data-dir", self.data_dir, "--log-format", "json",
                *sql, *otlp_http, *self.args]

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        import subprocess
        import urllib.request

        os.makedirs(self.data_dir, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.http_url + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"service not ready within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait for the drain, return the exit code."""
        import signal

        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = int(self.proc.wait(timeout))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def metrics(self, token: str | None = None, names: Sequence[str] = ()) -> str:
        """The ``/metrics`` text (``token``: an admin or metrics token, needed when tokens are configured); only the
        samples ``names`` when given (``name[]``: a poller then costs the service one family's formatting)."""
        query = f"?{urlencode([('name[]', n) for n in names])}" if names else ""
        request = urllib.request.Request(self.http_url + "/metrics" + query)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Run ``query`` with ``llm-cost-tracker sql --format json`` (through the SQL endpoint while it runs)."""
        import json
        import subprocess
        import sys

        out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "sql", query, "--format", "json",
                              "--data-dir", self.data_dir], capture_output=True, text=True, env=self.env, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"sql failed ({out.returncode}): {out.stderr}")
        return list(json.loads(out.stdout))


def http_head_only(port: int, path: str, content_type: str, content_length: int,
                   timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """POST a request head announcing ``content_length`` bytes and send none of them: how a server answers a
    body it will not read (a 413), without the client's write racing the server's close."""
    import http.client
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {content_length}\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def rotel_agent_path() -> str:
    """The ``rotel-agent`` collector binary shipped in the ``rotel`` wheel."""
    from importlib import resources

    return str(resources.files("rotel") / "rotel-agent")


def rotel_command(target: str, grpc_port: int, http_port: int, workdir: str, *extra: str) -> list[str]:
    """rotel as a collector on 127.0.0.1 forwarding OTLP/gRPC to ``target`` (HOST:PORT)."""
    return [rotel_agent_path(), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "otlp",
            "--otlp-exporter-endpoint", f"http://{target}", "--otlp-exporter-protocol", "grpc",
            "--pid-file", os.path.join(workdir, "rotel.pid"), "--log-file", os.path.join(workdir, "rotel.log"),
            *extra]


def wait_listening(port: int, proc: Any, timeout: float = 30.0) -> bool:
    """Wait until the child process ``proc`` (a collector, a broker) accepts connections on 127.0.0.1:``port``:
    the event a test waits for instead of a fixed sleep. False if it exited first or the timeout passed."""
    import socket

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def http_get(port: int, path: str, *authorization: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET to 127.0.0.1:``port`` with each of ``authorization`` as its own
    ``Authorization`` field (repeats allowed, as a hostile client sends them)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.putrequest("GET", path)
    for value in authorization:
        conn.putheader("Authorization", value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def http_json(url: str, body: bytes | None = None, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    """``(status, decoded JSON body)`` of one HTTP request, error statuses included (for the JSON APIs' tests)."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


SECRETS = {
    "openai_key": "sk-proj-Zq81xVb27LmN4kT9sRw3YhU6",
    "anthropic_key": "sk-ant-api03-Qw8rT5yU2iO9pA6sD3fG1hJ4",
    "aws_access_key": "AKIAQ7ZXWB3RTY4UP2LM",
    "github_token": "ghp_8sK2mN5pQ7rT1vW3xY6zA9bC4dE0fG2hJ5kL",
    "google_api_key": "AIzaSyD4x7Qm2Kp9Lr5Tn8Wv3Yb6Zc1Fh0Gj4Hk",
    "credit_card": "4539 1488 0343 6467",
}
"""One valid-looking value per detector of what must never be stored in clear (the card passes Luhn)."""


def secret_probe_request() -> ExportTraceServiceRequest:
    """An Export with a secret in every place a client controls: span name, service name, tenant, model,
    provider, operation, a resource attribute key and value, a span attribute key, a card number in an
    ordinary attribute value (plain and grouped), and a span with a bad id (rejected: its message echoes)."""
    s = SECRETS
    card_plain = s["credit_card"].replace(" ", "")
    attrs: dict[str, AttributeValue] = {**genai_attributes(model=s["openai_key"],
                                                           provider=s["google_api_key"],
                                                           operation=s["anthropic_key"]),
                                        f"app.{s['aws_access_key']}": "1", "payment.note": f"paid with {s['credit_card']}",
                                        "order.card": card_plain}
    spans = [make_span(attrs, name=f"chat {s['github_token']}")]
    bad = make_span(genai_attributes(), name=f"chat {s['openai_key']}")
    bad.trace_id = b"short"
    spans.append(bad)
    return make_request(spans, {"service.name": f"svc:{s['github_token']}", "tenant.id": s["aws_access_key"],
                                f"deploy.{s['openai_key']}": "x", "billing.card": card_plain})


def leaked_secrets(text: str) -> list[str]:
    """The names of the :data:`SECRETS` found in ``text`` (case-insensitive; the card with or without spaces)."""
    lowered = text.lower()
    found = [name for name, value in SECRETS.items() if value.lower() in lowered]
    if "credit_card" not in found and SECRETS["credit_card"].replace(" ", "") in text:
        found.append("credit_card")
    return found
