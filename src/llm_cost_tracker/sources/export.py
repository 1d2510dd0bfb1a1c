"""One OTLP trace Export, whatever protocol carried it: auth, tenant, admission, decode, publish, answer.

Both receivers (OTLP/gRPC in ``otlp_grpc.py``, OTLP/HTTP in ``otlp_http.py``) hand the request body
and the caller's headers to :class:`ExportCore` and map what it decides to their own status codes.
Every refusal is decided here, once, as a :class:`Refused` of one of six kinds:

============== ============================================= ======================== ============
kind           when                                          gRPC                     HTTP
============== ============================================= ======================== ============
unauthenticated missing or wrong bearer token                UNAUTHENTICATED          401
invalid        not an ExportTraceServiceRequest, over a      INVALID_ARGUMENT         400
               per-request limit, two tenant headers
too_large      over the message size (decided by the         RESOURCE_EXHAUSTED       413
               transport: grpc, or the HTTP body reader)
over_burst     bigger than the tenant's rate-limit burst     RESOURCE_EXHAUSTED       413
               (never admitted: not to be retried)
unavailable    queue full, its backend down, shutting down   UNAVAILABLE              503 + Retry-After
busy           rate limited, decode memory busy, too much    RESOURCE_EXHAUSTED +     429 + Retry-After
               in flight to the queue's backend              RetryInfo
============== ============================================= ======================== ============

``llm_pipeline_exports_total{code}`` counts every Export answered, over both protocols, by the gRPC
name of its outcome (``OK`` or the code in the table), so one error-ratio alert covers both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NoReturn

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.access.guard import KEEP_PAYLOAD_TENANT, AccessGuard, OverBurst
from llm_cost_tracker.access.tokens import Principal, TokenTable
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.sources.admission import MemoryBudget, decode_cost
from llm_cost_tracker.sources.columnar import Columnar, ColumnarPath, Prepared
from llm_cost_tracker.sources.otlp_decode import (
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    check_request,
    decode_spans,
    parse_request,
)
from llm_cost_tracker.sources.otlp_records import SCAN, decode_scan
from llm_cost_tracker.sources.otlp_scan import WireScan, scan_request
from llm_cost_tracker.sources.span_time import SpanTimeBounds
from llm_cost_tracker.transforms.calls import CallIdentity
from llm_cost_tracker.transforms.chain import TRANSFORM_ERROR, Chain
from llm_cost_tracker.types import (
    AttributeColumns,
    Publisher,
    QueueBusy,
    QueueFull,
    QueueUnavailable,
    SpanRecord,
    Transform,
)

__all__ = ["BUSY", "GRPC_CODES", "INVALID", "OVER_BURST", "TOO_LARGE", "TRANSFORM_ERROR", "UNAUTHENTICATED",
           "SCAN_MIN_BYTES", "UNAVAILABLE", "ExportCore", "Metadata", "Parser", "Refused", "spans_of"]

log = get_logger("export")
_NO_TOKENS = TokenTable()

UNAUTHENTICATED = "unauthenticated"
INVALID = "invalid"
TOO_LARGE = "too_large"
OVER_BURST = "over_burst"
UNAVAILABLE = "unavailable"
BUSY = "busy"
GRPC_CODES = {UNAUTHENTICATED: "UNAUTHENTICATED", INVALID: "INVALID_ARGUMENT", TOO_LARGE: "RESOURCE_EXHAUSTED",
              OVER_BURST: "RESOURCE_EXHAUSTED", UNAVAILABLE: "UNAVAILABLE", BUSY: "RESOURCE_EXHAUSTED"}
"""Each refusal's gRPC status name: the ``code`` label of ``llm_pipeline_exports_total`` for both protocols."""
UNAUTHENTICATED_MESSAGE = "missing or wrong bearer token (send exactly one 'authorization: Bearer <token>')"
STOPPING_MESSAGE = "shutting down; retry against another replica"

Metadata = Sequence[tuple[str, str | bytes]]
Parser = Callable[[bytes], ExportTraceServiceRequest]
"""Body -> request; raises ``DecodeError`` or ``ValueError`` (e.g. ``otlp_json.InvalidJson``) when malformed."""


def spans_of(request: ExportTraceServiceRequest, ids: set[tuple[bytes, bytes]]) -> ExportTraceServiceRequest:
    """The spans of ``request`` whose (trace id, span id) are in ``ids``, untouched, under copies of their
    resource and scope."""
    out = ExportTraceServiceRequest()
    for resource_spans in request.resource_spans:
        target = None
        for scope_spans in resource_spans.scope_spans:
            kept = [span for span in scope_spans.spans if (span.trace_id, span.span_id) in ids]
            if not kept:
                continue
            if target is None:
                target = out.resource_spans.add()
                target.resource.CopyFrom(resource_spans.resource)
                target.schema_url = resource_spans.schema_url
            scope = target.scope_spans.add()
            scope.scope.CopyFrom(scope_spans.scope)
            scope.schema_url = scope_spans.schema_url
            scope.spans.extend(kept)
    return out


SCAN_MIN_BYTES = 16_384
"""Protobuf requests this big or bigger are decoded by the wire scan (``otlp_scan``, ~40% less CPU per
span); smaller ones by protobuf, which is cheaper below ~30 spans: the scan has a fixed cost of about
0.1-0.2 ms per request (its numpy and compiled calls)."""


@dataclass(slots=True)
class _Staged:
    """A request after its stages: what it decoded to, what was handed to the queue (its records, or its rows
    from the columnar path) and how many spans were not LLM spans, those spans (kept only to pass them on) and
    the request itself (only then), and the queue's ack."""

    decoded: DecodedBatch
    published: list[SpanRecord] | Columnar
    other: int
    others: list[SpanRecord] | None
    request: ExportTraceServiceRequest | None
    acked: Future[None]


class Refused(Exception):
    """An Export not accepted. ``kind`` decides each protocol's answer; ``retry_after`` (seconds) is set for
    ``busy`` (and may be for ``unavailable``); ``message`` is safe to send to the client."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


class ExportCore:
    """The protocol-neutral Export: decode, run the transforms, publish, answer.

    Args:
        transforms: per-record stages, in order.
        publisher: the queue the accepted records go to.
        limits: per-span bounds applied while decoding.
        metrics: counters to update.
        guard: authenticates callers and applies tenant rate limits (everyone is admitted without one).
        ack_timeout: seconds to wait for the publisher's durability promise.
        calls: call identity, run on the request's records after the transforms (marks the later spans
            of a provider call as duplicates; told to forget the request's spans when it is not accepted).
        memory: the decode memory budget (unbounded without one), shared by both protocols.
        memory_wait: seconds a request may wait for its share of ``memory``.
        time_bounds: moves spans whose start time the store cannot hold into the request's rejections
            (``SpanTimeBounds``); None accepts any start time the decoder does.
        passthrough: takes the request's spans that are not LLM spans, untouched, once the request is
            accepted (``--forward-all``: the forwarder); None drops them after counting.
        stage_workers: requests decoded and run through the stages at once, over both protocols (see
            :attr:`stages`); None: no bound beyond the listeners' own.
        columnar: run the requests the wire scan reads through the columnar path (``sources/columnar.py``), which
            hands ``publisher`` an Arrow table instead of records: only for a queue that takes one (the
            in-process queue) and without ``passthrough``. A request the path declines takes the stages.
    """

    def __init__(self, transforms: list[Transform], publisher: Publisher, limits: DecodeLimits,
                 metrics: Metrics, guard: AccessGuard | None = None, ack_timeout: float = 10.0,
                 calls: CallIdentity | None = None, memory: MemoryBudget | None = None,
                 memory_wait: float = 5.0, time_bounds: Callable[[DecodedBatch], None] | None = None,
                 passthrough: Callable[[ExportTraceServiceRequest, int], None] | None = None,
                 stage_workers: int | None = None, columnar: bool = False) -> None:
        self.stages = threading.BoundedSemaphore(stage_workers) if stage_workers else None
        """Held from decoding a request to handing its records to the queue, not while its acknowledgement
        is awaited. Those steps are Python and hold the GIL, so a second request decoding at the same time
        only interleaves with the first: every switch costs CPU, and the batch writer, one thread among
        all of them, gets a smaller share of the GIL, falls behind, and the queue fills (clients are asked
        to retry). One at a time (the default, ``stage_workers``) took ~5% less CPU per span and no retries
        in ``benchmarks/ingest.py`` (docs/performance.md)."""
        self._passthrough = passthrough
        self._time_bounds = time_bounds
        self._chain = Chain(transforms, calls)  # the stages and their failure rules, shared by every protocol
        bounds = time_bounds if isinstance(time_bounds, SpanTimeBounds) else None
        self._columnar = (ColumnarPath.build(transforms, calls, limits, bounds)  # (other bounds: the stages')
                          if columnar and passthrough is None and (time_bounds is None or bounds) else None)
        """The columnar path (None: every request takes the stages). Built from the same stages and call identity,
        so both paths share one window, one catalog, one redaction policy."""
        self._publisher = publisher
        self._limits = limits
        self._metrics = metrics
        self._guard = guard or AccessGuard(lambda: _NO_TOKENS)
        self._ack_timeout = ack_timeout
        self.memory = memory
        self._memory_wait = memory_wait
        self.accepting = True

    def refusal(self, kind: str, message: str, retry_after: float | None = None) -> Refused:
        """A :class:`Refused`, counted in ``llm_pipeline_exports_total`` (the one place refusals are counted)."""
        self._metrics.exports.labels(code=GRPC_CODES[kind]).inc()
        return Refused(kind, message, retry_after)

    def _forget(self, published: list[SpanRecord] | Columnar) -> None:
        if isinstance(published, Columnar):
            self._chain.forget_keys(published.ids.pairs())
        else:
            self._chain.forget(published)

    def gate(self, metadata: Metadata) -> Refused | None:
        """The refusal of a call from its headers alone (wrong token, shutting down), or None to admit it."""
        if self._guard.authenticate(metadata) is None:
            return self.refusal(UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        if not self.accepting:
            return self.refusal(UNAVAILABLE, STOPPING_MESSAGE, retry_after=1.0)
        return None

    def _admit(self, principal: Principal, spans: int | None, size: int, charge: bool = True) -> None:
        """Raise unless the tenant's rate limits admit the request (charged when ``charge``)."""
        try:
            wait = self._guard.admit(principal, spans, size, charge)
        except OverBurst as exc:  # never fits: not to be retried
            raise self.refusal(OVER_BURST, str(exc)) from None
        if wait > 0:
            raise self.refusal(BUSY, f"rate limited, retry in {wait:g}s: tenant {principal.tenant_name!r} is over "
                                     "its rate limit", retry_after=wait)

    def export(self, payload: bytes, metadata: Metadata, parse: Parser = parse_request) -> ExportTraceServiceResponse:
        """Accept one Export body sent with ``metadata`` (lower-cased header names); raises :class:`Refused`."""
        principal = self._guard.authenticate(metadata)
        if principal is None:
            raise self.refusal(UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        try:
            tenant = self._guard.tenant_for(principal, metadata)
        except ValueError as exc:
            raise self.refusal(INVALID, str(exc)) from None
        if not self.accepting:
            raise self.refusal(UNAVAILABLE, STOPPING_MESSAGE, retry_after=1.0)
        self._admit(principal, None, len(payload), charge=False)  # bytes: known before parsing
        if self.memory is None:
            return self._export(payload, principal, tenant, parse)
        cost = decode_cost(len(payload))
        if not self.memory.acquire(cost, self._memory_wait):
            raise self.refusal(BUSY, f"receiver memory busy, retry in 1s: {self.memory.in_use >> 20} MiB of "
                                     f"requests are being decoded (budget {self.memory.capacity >> 20} MiB)",
                               retry_after=1.0)
        try:
            return self._export(payload, principal, tenant, parse)
        finally:
            self.memory.release(cost)

    def _export(self, payload: bytes, principal: Principal, tenant: str | None,
                parse: Parser) -> ExportTraceServiceResponse:
        with self.stages or nullcontext():
            staged = self._stage(payload, principal, tenant, parse)
        decoded, published = staged.decoded, staged.published
        self._await(published, staged.acked)  # outside ``stages``: another request may decode meanwhile
        others = staged.others
        if others and self._passthrough is not None:  # accepted: the other spans go on as they arrived
            assert staged.request is not None
            kept = spans_of(staged.request, {(bytes.fromhex(r.trace_id), bytes.fromhex(r.span_id)) for r in others})
            self._passthrough(kept, len(others))
        m = self._metrics  # spend is counted by the writer, after the store, from first arrivals only
        llm = len(published.table) if isinstance(published, Columnar) else len(published)
        if llm:
            m.spans_received.labels(kind="llm").inc(llm)
        if staged.other:
            m.spans_received.labels(kind="other").inc(staged.other)
        for reason, count in decoded.rejected.items():
            m.spans_rejected.labels(reason=reason).inc(count)
        if decoded.truncated_attributes:
            m.attributes_truncated.inc(decoded.truncated_attributes)
        m.exports.labels(code="OK").inc()
        response = ExportTraceServiceResponse()
        if decoded.rejected or decoded.messages:
            response.partial_success.rejected_spans = decoded.rejected_count
            response.partial_success.error_message = "; ".join(decoded.messages)
        return response

    def _stage(self, payload: bytes, principal: Principal, tenant: str | None, parse: Parser) -> _Staged:
        """Decode the request, run the stages and hand the records to the queue (the part ``stages`` bounds)."""
        request: ExportTraceServiceRequest | None = None
        scan = self._scan(payload) if parse is parse_request and self._passthrough is None else None
        if scan is not None:
            self._admit(principal, scan.span_count, len(payload))
            prepared = self._prepare(scan, payload, tenant) if self._columnar is not None else None
            if self._columnar is not None:
                self._metrics.columnar_requests.labels(outcome="declined" if prepared is None else "decided").inc()
            if prepared is not None:
                done = self._finish(prepared)
                return _Staged(DecodedBatch(), done, done.other, None, None, self._enqueue(done, len(payload)))
            decoded = self._decode_scan(scan, payload, parse)
            del scan
        else:  # JSON, a request the scan leaves to protobuf, or other spans to pass on (they need the request)
            request = self._parse(payload, parse)
            try:
                spans = check_request(request, self._limits)  # counts without decoding a span
                self._admit(principal, spans, len(payload))
                decoded = decode_spans(request, self._limits, checked=True)
            except LimitExceeded as exc:
                raise self.refusal(INVALID, str(exc)) from None
            if self._passthrough is None:
                request = None  # its records are all that is needed now
        if self._time_bounds is not None:
            self._time_bounds(decoded)
        if tenant is not KEEP_PAYLOAD_TENANT:
            for record in decoded.records:
                record.tenant = tenant  # the token (or an admin's header) decides the tenant, not the payload
        others: list[SpanRecord] | None = [] if self._passthrough is not None else None
        processed = self._chain.process(decoded.records, decoded.reject, others, decoded.columns)
        columns = decoded.columns
        if columns is not None and 2 * len(processed.records) < len(columns.dicts):
            columns = None  # mostly other spans: the queue would hold their attributes' ids too, uncounted
        return _Staged(decoded, processed.records, processed.other, others, request,
                       self._enqueue(processed.records, len(payload), columns))

    def _finish(self, prepared: Prepared) -> Columnar:
        """File a request the columnar path decided in call identity's window and build its rows. Should building
        them fail (a bug), call identity forgets its spans before the error goes on: none of them was stored."""
        assert self._columnar is not None
        marks = self._columnar.file(prepared)
        try:
            return self._columnar.rows(prepared, marks)
        except BaseException:
            self._chain.forget_keys(prepared.calls.ids.pairs())
            raise

    def _prepare(self, scan: WireScan, payload: bytes, tenant: str | None) -> Prepared | None:
        """The columnar path's decision on a scanned request (None: the stages decide it). It changes nothing,
        so any failure of it leaves the request to the stages, whole."""
        assert self._columnar is not None
        try:
            return self._columnar.prepare(scan, payload, tenant)
        except Exception as exc:  # noqa: BLE001 - a bug of the path must not cost the request
            log.error("columnar path failed; running the stages", error=type(exc).__name__)  # its text may quote the request
            return None

    def _scan(self, payload: bytes) -> WireScan | None:
        """The wire scan's tables of a big enough request, or None for protobuf (see ``SCAN_MIN_BYTES``).

        Only a request limit refuses here; any other failure of the scan leaves the request to protobuf."""
        if len(payload) < SCAN_MIN_BYTES or not SCAN.usable:
            return None
        try:
            return scan_request(payload, self._limits)
        except LimitExceeded as exc:
            raise self.refusal(INVALID, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a bug of the scan must not cost the request
            log.error("wire scan failed; decoding with protobuf", error=type(exc).__name__)  # its text may quote the request
            return None

    def _decode_scan(self, scan: WireScan, payload: bytes, parse: Parser) -> DecodedBatch:
        """The records of a scanned request; protobuf's when a per-value limit cuts it or the records fail."""
        try:
            decoded = decode_scan(scan, payload, self._limits)
        except Exception as exc:  # noqa: BLE001 - as in _scan: the reference decoder decides
            log.error("wire scan records failed; decoding with protobuf", error=type(exc).__name__)
            decoded = None
        return decoded if decoded is not None else self._decode(payload, parse)

    def _parse(self, payload: bytes, parse: Parser) -> ExportTraceServiceRequest:
        try:
            return parse(payload)
        except (DecodeError, ValueError) as exc:
            raise self.refusal(INVALID, f"malformed ExportTraceServiceRequest ({len(payload)} bytes): {exc}") from None

    def _decode(self, payload: bytes, parse: Parser) -> DecodedBatch:
        """The reference decoder, for a scanned request a per-value limit cuts (counted and admitted already,
        so ``checked``: no request limit is looked at again)."""
        return decode_spans(self._parse(payload, parse), self._limits, checked=True)

    def _enqueue(self, published: list[SpanRecord] | Columnar, wire_bytes: int,
                 columns: AttributeColumns | None = None) -> Future[None]:
        """Hand ``published`` (records decoded from ``wire_bytes`` of request, with its attribute ``columns`` when
        the wire scan made them, or the columnar path's table) to the queue: the future of their acknowledgement
        (a refusal now raises)."""
        try:
            if isinstance(published, Columnar):
                # (only a queue that takes tables gets one: ``columnar`` is set for the in-process queue alone)
                return self._publisher.publish(published.table, wire_bytes)  # type: ignore[arg-type]
            return self._publisher.publish(published, wire_bytes, columns)
        except (QueueBusy, QueueFull, QueueUnavailable) as exc:
            self._refuse_unqueued(published, exc)

    def _await(self, published: list[SpanRecord] | Columnar, acked: Future[None]) -> None:
        """Wait for the queue's acknowledgement of ``published``; raises :class:`Refused` when it fails or is late."""
        try:
            acked.result(timeout=self._ack_timeout)  # raises a failed ack's error
        except (QueueBusy, QueueFull, QueueUnavailable) as exc:
            self._refuse_unqueued(published, exc)
        except futures.TimeoutError:
            self._forget(published)
            raise self.refusal(UNAVAILABLE, f"spans not confirmed stored within {self._ack_timeout}s, retry later",
                               retry_after=1.0) from None

    def _refuse_unqueued(self, published: list[SpanRecord] | Columnar, exc: Exception) -> NoReturn:
        """The refusal of spans the queue did not take: forgotten by call identity (a retry is no copy)."""
        self._forget(published)
        if isinstance(exc, QueueBusy):
            delay = max(exc.retry_after_seconds, 0.0)
            raise self.refusal(BUSY, f"too many spans in flight, retry in {delay:g}s: {exc}",
                               retry_after=delay) from None
        raise self.refusal(UNAVAILABLE, f"cannot accept spans now, retry later: {exc}", retry_after=1.0) from None
