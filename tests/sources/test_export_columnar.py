"""An Export through the columnar path queues the rows the stages would, counts the same, and a refused one
is forgotten by call identity, so that its retry is priced."""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llm_cost_tracker.budgets._ledger import SpendLedger, TrackingQueue
from llm_cost_tracker.config import Settings
from llm_cost_tracker.frontend import call_identity, decode_limits, default_transforms, load_catalog
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sources.columnar import ColumnarPath
from llm_cost_tracker.sources.export import SCAN_MIN_BYTES, ExportCore, Refused
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.storage.table import SpanTable
from llm_cost_tracker.testing import genai_attributes, make_request, make_span
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.types import PRICED


@pytest.fixture(scope="module")
def catalog() -> Any:
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-export-columnar-"))
    return load_catalog(settings.pricing, settings.store)


def _core(catalog: Any, columnar: bool, capacity: int = 100_000) -> tuple[ExportCore, MemoryQueue, Metrics]:
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-export-columnar-"))
    metrics = Metrics()
    queue = MemoryQueue(capacity)
    transforms = default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics))
    core = ExportCore(transforms, queue, decode_limits(settings.decode), metrics,
                      calls=call_identity(settings.calls, metrics), columnar=columnar)
    return core, queue, metrics


def _payload(rng: random.Random, spans: int = 200, other: int = 10) -> bytes:
    out = [make_span({**genai_attributes(model=rng.choice(["gpt-4o", "gpt-4o-mini"]),
                                         input_tokens=rng.randrange(1, 9000), output_tokens=rng.randrange(1, 900)),
                      "gen_ai.response.id": f"resp-{rng.getrandbits(48):x}", "user.id": f"u{rng.randrange(9)}"})
           for _ in range(spans)]
    out += [make_span({"http.method": "GET"}, name="GET /") for _ in range(other)]
    payload = make_request(out, {"service.name": "svc", "tenant.id": "t"}).SerializeToString()
    assert len(payload) >= SCAN_MIN_BYTES  # (the wire scan reads it, and so the columnar path may)
    return payload


def _rows(queue: MemoryQueue) -> pa.Table:
    batch = queue.take(10**6, 0.0)
    assert batch is not None
    queue.commit(batch)
    if isinstance(batch.records, SpanTable):
        return batch.records.table
    assert isinstance(batch.records, list)
    return records_to_arrow(batch.records, batch.columns)


def _counted(metrics: Metrics) -> dict[Any, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in metrics.registry.collect()
            if f.name.startswith(("llm_spans_received", "llm_pipeline_exports", "llm_duplicate_spans"))
            for s in f.samples}


def test_the_same_rows_and_counts_as_the_stages(catalog: Any) -> None:
    rng = random.Random(1)
    payloads = [_payload(rng) for _ in range(3)]
    tables = {}
    for columnar in (False, True):
        core, queue, metrics = _core(catalog, columnar)
        for payload in payloads + payloads[:1]:  # (the first again: a retry whose spans are all carriers)
            response = core.export(payload, {})
            assert not response.partial_success.rejected_spans
        batch = queue.take(10**6, 0.0)
        assert batch is not None
        assert isinstance(batch.records, SpanTable) is columnar  # (the path decided every request)
        queue.commit(batch)
        rows = batch.records.table if isinstance(batch.records, SpanTable) else records_to_arrow(batch.records,
                                                                                                batch.columns)
        tables[columnar] = (rows, _counted(metrics))
    assert tables[True][0].cast(tables[False][0].schema).equals(tables[False][0])  # (the path's names: dictionaries)
    assert tables[True][1] == tables[False][1]
    assert tables[True][0].num_rows == 4 * 200


def test_a_refused_request_is_forgotten(catalog: Any) -> None:
    """The queue refuses an Export (full): call identity forgets its spans, so another instrumentation's spans of
    the same calls, accepted next, carry the cost (not duplicates of spans never stored)."""
    rng = random.Random(2)
    payload = _payload(rng, other=0)
    twins = ExportTraceServiceRequest.FromString(payload)
    for span in twins.resource_spans[0].scope_spans[0].spans:
        span.span_id = os.urandom(8)  # the same calls (response ids), seen by another scope
    twins.resource_spans[0].scope_spans[0].scope.name = "another-instrumentation"
    core, queue, _ = _core(catalog, True, capacity=250)
    core.export(_payload(rng, spans=100, other=0), {})  # 100 of the queue's 250 records
    with pytest.raises(Refused):
        core.export(payload, {})  # 200 more do not fit
    _rows(queue)  # the writer makes room
    core.export(twins.SerializeToString(), {})
    statuses = _rows(queue).column("pricing_status").to_pylist()
    assert len(statuses) == 200 and set(statuses) == {PRICED}, set(statuses)


def test_the_spend_ledger_counts_tables_until_they_are_stored(catalog: Any) -> None:
    """Budgets see accepted spend before the store has it: a table's spend enters the ledger when published,
    the same entries as its records' would, and leaves it when the writer commits it."""
    rng = random.Random(3)
    payloads = [_payload(rng) for _ in range(2)]
    snapshots = {}
    for columnar in (False, True):
        settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-export-columnar-"))
        metrics = Metrics()
        ledger = SpendLedger()
        queue = TrackingQueue(MemoryQueue(100_000), ledger)
        transforms = default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics))
        core = ExportCore(transforms, queue, decode_limits(settings.decode), metrics,
                          calls=call_identity(settings.calls, metrics), columnar=columnar)
        for payload in payloads:
            core.export(payload, {})
        snapshots[columnar] = ledger.snapshot()
        batch = queue.take(10**6, 0.0)
        assert batch is not None and isinstance(batch.records, SpanTable) is columnar
        queue.commit(batch)
        assert not any(ledger.snapshot().values())
    assert snapshots[True] == snapshots[False] and snapshots[True]


def test_rows_that_fail_to_build_leave_no_carrier(catalog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the columnar path fail after filing a request's spans (a bug), the Export fails and call identity
    forgets them: another instrumentation's spans of the same calls, accepted next, carry the cost."""
    rng = random.Random(4)
    payload = _payload(rng, other=0)
    twins = ExportTraceServiceRequest.FromString(payload)
    for span in twins.resource_spans[0].scope_spans[0].spans:
        span.span_id = os.urandom(8)
    twins.resource_spans[0].scope_spans[0].scope.name = "another-instrumentation"
    core, queue, _ = _core(catalog, True)
    with monkeypatch.context() as patched:
        patched.setattr(ColumnarPath, "rows", lambda self, prepared, marks: (_ for _ in ()).throw(RuntimeError("bug")))
        with pytest.raises(RuntimeError):
            core.export(payload, {})
    core.export(twins.SerializeToString(), {})
    statuses = _rows(queue).column("pricing_status").to_pylist()
    assert len(statuses) == 200 and set(statuses) == {PRICED}, set(statuses)
