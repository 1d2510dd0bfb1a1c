"""The columnar path stores what the stages store, row for row, and declines what it cannot decide.

Each test runs two receivers side by side over the same requests, each with its own call identity window
and metrics: the reference (the stages, record by record, as every request ran before the columnar path)
and the one under test (the columnar path, which hands a declined request to its own stages, as
``ExportCore`` does). After every request the rows each would store must be the same Arrow table, and so
must what they counted.
"""

from __future__ import annotations

import random
import tempfile
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.frontend import call_identity, decode_limits, default_transforms, load_catalog
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources import columnar
from llm_cost_tracker.sources.columnar import ColumnarPath
from llm_cost_tracker.sources.otlp_records import decode_scan
from llm_cost_tracker.sources.otlp_scan import scan_request
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import DICTIONARY_COLUMNS, SpanTable
from llm_cost_tracker.testing import key_values, make_span
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.redact import Redact

MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"),
          ("gcp.gemini", "gemini-2.5-flash"), ("openai", "text-embedding-3-small")]
SCOPES = ["", "opentelemetry.instrumentation.openai", "openinference.instrumentation.openai", "anthropic-sdk"]


@pytest.fixture(scope="module")
def catalog() -> Any:
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-columnar-"))
    loaded = load_catalog(settings.pricing, settings.store)
    loaded.current.compile_columns()
    return loaded


class Receiver:
    """The stages and call identity of one receiver; ``columnar`` adds the columnar path in front of them."""

    def __init__(self, catalog: Any, columnar: bool, tenant_attribute: str = "tenant.id",
                 clock: Any = None) -> None:
        self.settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-columnar-"), tenant_attribute=tenant_attribute)
        self.metrics = Metrics()
        transforms = default_transforms(lambda: catalog.current, self.metrics, Redact.from_settings(self.settings,
                                                                                                   self.metrics))
        calls = call_identity(self.settings.calls, self.metrics)
        if clock is not None:
            calls._clock = clock
        self.chain = Chain(transforms, calls)
        self.limits = decode_limits(self.settings.decode)
        self.path = ColumnarPath.build(transforms, calls, self.limits) if columnar else None
        self.decided = self.declined = 0

    def rows(self, payload: bytes, tenant: str | None = None) -> tuple[pa.Table, int]:
        """The rows this receiver would store of ``payload``, and how many spans were not LLM spans."""
        scan = scan_request(payload, self.limits)
        assert scan is not None
        if self.path is not None:
            prepared = self.path.prepare(scan, payload, tenant)
            if prepared is not None:
                self.decided += 1
                done = self.path.finish(prepared)
                plain = SpanTable(done.table.table)  # (the codes worked out from the columns)
                for name in ("tenant", "service_name", "provider", "model"):
                    (given, values), (computed, distinct) = done.table.codes(name), plain.codes(name)
                    assert [values[i] for i in given.tolist()] == [distinct[i] for i in computed.tolist()], name
                return done.table.table, done.other
            self.declined += 1
        decoded = decode_scan(scan, payload, self.limits)
        assert decoded is not None
        if tenant is not None:
            for record in decoded.records:
                record.tenant = tenant
        processed = self.chain.process(decoded.records, decoded.reject, None, decoded.columns)
        columns = [decoded.columns] if decoded.columns is not None else []
        return records_to_arrow(processed.records, columns), processed.other

    def counted(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """What the stages counted (duplicates, redactions, window), by sample."""
        out = {}
        for family in self.metrics.registry.collect():
            if family.name.startswith(("llm_duplicate_spans", "llm_redactions", "llm_call_window")):
                for sample in family.samples:
                    out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


def _attributes(rng: random.Random, provider: str, model: str) -> dict[str, Any]:
    inp = rng.randrange(1, 20_000) if rng.random() > 0.05 else 0  # (an output-only count now and then)
    out = 0 if "embedding" in model else rng.randrange(1, 2_000)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "embeddings" if "embedding" in model else "chat",
        "gen_ai.provider.name": provider, "gen_ai.request.model": model, "gen_ai.response.model": model,
        "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):016x}", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.request.temperature": 0.2, "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
        "server.port": 443, "user.id": f"user-{rng.randrange(50)}",
    }
    if rng.random() < 0.4 and out:
        attrs["gen_ai.usage.cache_read.input_tokens"] = rng.randrange(0, inp + 1)
        if rng.random() < 0.2:  # Anthropic's raw input, without the cache: the total becomes their sum
            attrs["gen_ai.usage.cache_read.input_tokens"] = inp + rng.randrange(1, 500)
    if rng.random() < 0.1:
        attrs["gen_ai.usage.reasoning.output_tokens"] = rng.randrange(0, out + 1)
    if rng.random() < 0.05:
        del attrs["gen_ai.response.id"]
    return attrs


def _request(rng: random.Random, spans: int, *, others: float = 0.0, resources: int = 1,
             tenant_on_spans: bool = False) -> bytes:
    """A request of ``spans`` LLM spans under ``resources`` resources and random scopes, with a share
    ``others`` of spans that are not LLM calls (an HTTP span, an agent span naming a model)."""
    request = ExportTraceServiceRequest()
    for _ in range(resources):
        rs = request.resource_spans.add()
        resource: dict[str, Any] = {"service.name": rng.choice(["svc-a", "svc-b"]),
                                    "service.instance.id": f"pod-{rng.randrange(3)}"}
        if not tenant_on_spans:
            resource["tenant.id"] = rng.choice(["t1", "t2", "t3"])
        rs.resource.attributes.extend(key_values(resource))
        for scope in rng.sample(SCOPES, 2):
            ss = rs.scope_spans.add()
            ss.scope.name = scope
            for _ in range(spans // (2 * resources)):
                provider, model = rng.choice(MODELS)
                attrs = _attributes(rng, provider, model)
                if tenant_on_spans and rng.random() < 0.8:
                    attrs["tenant.id"] = rng.choice(["t1", "t2"])
                name = "chat"
                if rng.random() < others:
                    attrs = ({"http.method": "POST", "server.port": 443} if rng.random() < 0.5 else
                             {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": model})
                    name = "POST" if "http.method" in attrs else "agent"
                ss.spans.append(make_span(attrs, name=name, start_ns=1_790_000_000_000_000_000
                                          + rng.randrange(10**12)))
    return request.SerializeToString()


def _same(reference: Receiver, tested: Receiver, payload: bytes, tenant: str | None = None) -> None:
    want, want_other = reference.rows(payload, tenant)
    got, got_other = tested.rows(payload, tenant)
    if got.schema != want.schema:  # the path's names and map keys dictionary-encoded, the records' plain
        assert got.column_names == want.column_names
        assert all(pa.types.is_dictionary(got.schema.field(name).type) for name in DICTIONARY_COLUMNS)
        assert pa.types.is_dictionary(got.schema.field("attributes").type.key_type)
        got = got.cast(want.schema)
    for name in want.column_names:
        assert got.column(name).equals(want.column(name)), name
    assert got_other == want_other


def test_the_same_rows_as_the_stages(catalog: Any) -> None:
    """Requests of every shape the path decides: several resources and scopes, cache reads, embeddings, spans
    that are not LLM spans, and the same calls seen again (a collector's retry) and by another scope."""
    rng = random.Random(7)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    payloads = [_request(rng, 64, others=0.1 * (i % 3), resources=1 + i % 3) for i in range(12)]
    for payload in payloads + payloads[:3]:  # (the last three again: every span is already a carrier)
        _same(reference, tested, payload)
    assert tested.decided == len(payloads) + 3, "the path declined requests it should decide"
    assert reference.counted() == tested.counted()


def test_duplicates_across_instrumentations(catalog: Any) -> None:
    """Two scopes reporting the same calls (the same response id, or the same usage at overlapping times) in
    one request and across requests: the later spans are marked duplicates, with the same attributes."""
    rng = random.Random(3)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    for i in range(6):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(key_values({"service.name": "svc", "service.instance.id": "pod-1",
                                                  "tenant.id": "t1"}))
        first, second = rs.scope_spans.add(), rs.scope_spans.add()
        first.scope.name, second.scope.name = "openai-sdk", "openllmetry"
        for j in range(20):
            attrs = _attributes(rng, "openai", "gpt-4o-mini")
            start = 1_790_000_000_000_000_000 + (i * 100 + j) * 10**9
            first.spans.append(make_span(attrs, start_ns=start))
            twin = dict(attrs)
            if j % 2:  # no response id: matched by usage and overlapping time
                twin.pop("gen_ai.response.id", None)
                attrs_first = first.spans[-1]
                del attrs_first.attributes[:]
                attrs_first.attributes.extend(key_values({k: v for k, v in attrs.items()
                                                          if k != "gen_ai.response.id"}))
            second.spans.append(make_span(twin, start_ns=start + 10**6, duration_ns=10**9))
        _same(reference, tested, request.SerializeToString())
    assert tested.decided == 6
    duplicates = {k: v for k, v in tested.counted().items() if k[0].startswith("llm_duplicate_spans")}
    assert sum(duplicates.values()) >= 60, duplicates  # both rules were exercised
    assert reference.counted() == tested.counted()


def test_the_window_forgets_by_age(catalog: Any) -> None:
    """Carriers older than the window's age are forgotten before a request is filed: a later span of their calls
    is priced (both paths, on the same clock)."""
    now = [0.0]
    rng = random.Random(9)
    reference = Receiver(catalog, False, clock=lambda: now[0])
    tested = Receiver(catalog, True, clock=lambda: now[0])
    payloads = [_request(rng, 40) for _ in range(3)]
    for payload in payloads:
        _same(reference, tested, payload)
        now[0] += 200.0
    for payload in payloads:  # the first two requests' carriers are gone by now, the third's are not
        _same(reference, tested, payload)
    assert tested.decided == 6
    assert reference.counted() == tested.counted()


def test_resources_of_spans_left_out_are_not_counted(catalog: Any) -> None:
    """Redaction counts what it masks in the resources of the spans it stores, not of those left out."""
    rng = random.Random(13)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    request = ExportTraceServiceRequest.FromString(_request(rng, 20, resources=2))
    secret = "sk-proj-" + "Zq9Xw8Vu7Ts6Rp5On4Ml" * 2
    for rs in request.resource_spans:
        rs.resource.attributes.extend(key_values({"deployment.note": f"key {secret}"}))
    for ss in request.resource_spans[1].scope_spans:  # the second resource's spans are not LLM spans
        for span in ss.spans:
            del span.attributes[:]
            span.attributes.extend(key_values({"http.method": "GET"}))
    _same(reference, tested, request.SerializeToString())
    assert tested.decided == 1
    redactions = {k: v for k, v in tested.counted().items() if k[0].startswith("llm_redactions")}
    assert sum(redactions.values()) == 1, redactions
    assert reference.counted() == tested.counted()


def test_tenants_from_spans_and_from_the_caller(catalog: Any) -> None:
    rng = random.Random(5)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    for _ in range(4):
        payload = _request(rng, 40, tenant_on_spans=True, resources=2)
        _same(reference, tested, payload)
        _same(reference, tested, _request(rng, 40), tenant="from-token")
    assert tested.decided == 8


@pytest.mark.parametrize("change", [
    "float_tokens", "negative_tokens", "huge_tokens", "unknown_model", "secret_value", "content_key", "repeated_key",
    "openlit", "reported_cost", "two_provider_keys", "pricing_attribute", "all_other",
])
def test_declines_what_only_the_stages_decide(catalog: Any, change: str) -> None:
    """Each of these requests is declined whole (the stages decide it span by span), and the rows stored are
    still the reference's: the path changed nothing before declining."""
    rng = random.Random(11)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    request = ExportTraceServiceRequest.FromString(_request(rng, 20))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    extra: dict[str, Any] = {
        "float_tokens": {"gen_ai.usage.input_tokens": 12.0},
        "negative_tokens": {"gen_ai.usage.output_tokens": -3},
        "huge_tokens": {"gen_ai.usage.input_tokens": 2**29},  # (past the array engine's bound)
        "unknown_model": {"gen_ai.response.model": "no-such-model-xyz", "gen_ai.request.model": "no-such-model-xyz"},
        "secret_value": {"user.id": "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0" * 2},
        "content_key": {"gen_ai.prompt": "hello"},
        "openlit": {"telemetry.sdk.name": "openlit"},
        "reported_cost": {"gen_ai.usage.cost": "0.01"},
        "two_provider_keys": {"gen_ai.system": "openai"},
        "pricing_attribute": {"openai.request.service_tier": "flex"},
    }.get(change, {})
    if change == "repeated_key":
        span.attributes.extend(key_values({"user.id": "again"}))
    elif change == "all_other":
        for ss in request.resource_spans[0].scope_spans:
            for s in ss.spans:
                del s.attributes[:]
                s.attributes.extend(key_values({"http.method": "GET"}))
    else:
        kept = [kv for kv in span.attributes if kv.key not in extra]
        del span.attributes[:]
        span.attributes.extend(kept)
        span.attributes.extend(key_values(extra))
    payload = request.SerializeToString()
    _same(reference, tested, payload)
    assert tested.declined == 1 and tested.decided == 0
    _same(reference, tested, _request(rng, 20))  # and the next request is decided, on the same window
    assert tested.decided == 1
    assert reference.counted() == tested.counted()


def test_counts_sent_as_text_are_read_as_the_stages_read_them(catalog: Any) -> None:
    """A count sent as a string is parsed (integers on the wire are read as they are): the same rows."""
    rng = random.Random(12)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    request = ExportTraceServiceRequest.FromString(_request(rng, 20))
    for k, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        kept = [kv for kv in span.attributes if kv.key != "gen_ai.usage.output_tokens"]
        del span.attributes[:]
        span.attributes.extend(kept)
        span.attributes.extend(key_values({"gen_ai.usage.output_tokens": str(40 + k) if k % 2 else 40 + k}))
    _same(reference, tested, request.SerializeToString())
    assert tested.decided == 1


def test_only_the_default_stages() -> None:
    """Another chain (a stage more, or another order) is never run through the path."""
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-columnar-"))
    metrics = Metrics()
    transforms = default_transforms(lambda: None, metrics)  # type: ignore[arg-type,return-value]
    limits = decode_limits(settings.decode)
    assert ColumnarPath.build(transforms, None, limits) is not None
    assert ColumnarPath.build(transforms[::-1], None, limits) is None
    assert ColumnarPath.build(transforms[:-1], None, limits) is None


def test_requests_over_the_span_bound_take_the_stages(catalog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request of more than MAX_SPANS spans is declined (its temporaries would grow with it on the receiving
    threads), and stored as the stages store it."""
    monkeypatch.setattr(columnar, "MAX_SPANS", 30)
    rng = random.Random(17)
    reference, tested = Receiver(catalog, False), Receiver(catalog, True)
    _same(reference, tested, _request(rng, 32))
    _same(reference, tested, _request(rng, 28))
    assert (tested.declined, tested.decided) == (1, 1)
