"""The forwarding queue: stored spans wait here until the next hop has them, retried with backoff.

Bounded in spans. The writer hands each stored batch over after its insert (:meth:`Forwarder.stored`);
when the queue is full that call waits, so the writer stops taking batches, the ingest queue fills and
Exports are answered UNAVAILABLE (503): the collector keeps the spans, nothing is dropped. The receiver
also refuses new Exports itself while the queue is full (:class:`ForwardGate`), before its spans
are queued for the store.

One sender thread sends requests in order. A retryable failure is retried with capped exponential
backoff (or the delay the next hop asked for) for as long as the service runs; a request the next hop
rejects for good is counted as failed and logged. On shutdown (:meth:`Forwarder.give_up_after`, then
:meth:`Forwarder.close`) the queue is drained until the deadline; what is still unsent then is counted as
failed and its count logged: the spans are stored, only their copy to the next hop is missing.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry, Counter, Gauge

from llm_cost_tracker.forward.sender import Rejected, Retryable, Sender
from llm_cost_tracker.forward.spans import Split, as_records, priced_requests
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.types import AttributeColumns, Publisher, QueueFull, SpanRecord

__all__ = ["ForwardGate", "ForwardMetrics", "Forwarder"]
log = get_logger("forward")


class ForwardMetrics:
    """``llm_forward_*``: spans forwarded, retries, spans failed (by reason), queue depth and capacity."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.forwarded = Counter("llm_forward_spans_forwarded", "Spans the next hop accepted (stored LLM spans "
                                 "with their cost, and with --forward-all the other spans).", registry=registry)
        self.retried = Counter("llm_forward_retries", "Export attempts to the next hop that failed and were "
                               "retried.", registry=registry)
        self.failed = Counter("llm_forward_spans_failed", "Spans not forwarded, by reason: rejected (the next hop "
                              "refused them for good) or shutdown (still queued at the shutdown deadline).",
                              ("reason",), registry=registry)
        self.depth = Gauge("llm_forward_queue_depth", "Spans waiting to be forwarded.", registry=registry)
        self.capacity = Gauge("llm_forward_queue_capacity", "Bound of the forwarding queue, in spans.",
                              registry=registry)


class Forwarder:
    """Queue and sender thread.

    Args:
        sender: sends one request to the next hop.
        capacity: spans the queue holds; past it :meth:`stored` waits and :meth:`room` is False.
        metrics: the ``llm_forward_*`` metrics.
        split: the prompt/completion split of a record's cost (``spans.catalog_split``), or None.
        max_spans: spans per request sent.
        retry_initial, retry_max: backoff bounds in seconds.
        target: the next hop's URL without credentials, for logs.
    """

    def __init__(self, sender: Sender, capacity: int, metrics: ForwardMetrics, split: Split | None = None,
                 max_spans: int = 512, retry_initial: float = 0.1, retry_max: float = 30.0, target: str = "") -> None:
        self._sender = sender
        self.target = target
        """The next hop's URL (for logs)."""
        self.capacity = capacity
        self._metrics = metrics
        self._split = split
        self._max_spans = max_spans
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._queue: collections.deque[tuple[ExportTraceServiceRequest, int]] = collections.deque()
        self.depth = 0
        self._cond = threading.Condition()
        self._closing = False
        self._give_up_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        metrics.capacity.set(capacity)
        metrics.depth.set_function(lambda: self.depth)

    def start(self) -> None:
        self._thread.start()

    def room(self) -> bool:
        """Whether the queue is below its bound (the receiver refuses new Exports otherwise)."""
        return self.depth < self.capacity

    def stored(self, records: Any) -> None:
        """The writer's hook: ``records`` were inserted (first arrivals only). Waits while the queue is full."""
        items = as_records(records)
        if items:
            for request, count in priced_requests(items, self._max_spans, self._split):
                self._put(request, count, wait=True)

    def passthrough(self, request: ExportTraceServiceRequest, count: int) -> None:
        """Queue spans that are not ours to price (``--forward-all``), as they arrived; never waits (the
        receiver checked :meth:`room` before accepting their request)."""
        self._put(request, count, wait=False)

    def _put(self, request: ExportTraceServiceRequest, count: int, wait: bool) -> None:
        with self._cond:
            while wait and self.depth and self.depth + count > self.capacity and not self._past_deadline():
                self._cond.wait(0.5)
            self._queue.append((request, count))
            self.depth += count
            self._cond.notify_all()

    def _past_deadline(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def give_up_after(self, seconds: float) -> None:
        """Shutdown: stop waiting and retrying ``seconds`` from now."""
        with self._cond:
            self._give_up_at = time.monotonic() + seconds
            self._cond.notify_all()

    def close(self, timeout: float) -> int:
        """Send what is queued (until the deadline set by :meth:`give_up_after`, else ``timeout``), stop the
        thread, return the spans left unsent (counted as failed, reason shutdown)."""
        with self._cond:
            if self._give_up_at is None:
                self._give_up_at = time.monotonic() + timeout
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(max(0.0, self._give_up_at - time.monotonic()) + 5)
        with self._cond:
            left = self.depth
            self._queue.clear()
            self.depth = 0
        if left:
            self._metrics.failed.labels(reason="shutdown").inc(left)
            log.error("spans stored but NOT FORWARDED: the next hop did not take them before the shutdown deadline",
                      spans=left)
        self._sender.close()
        return left

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                request, count = self._queue[0]
            sent = self._send(request, count)
            with self._cond:
                if not sent and self._past_deadline():
                    return  # close() counts what is left
                self._queue.popleft()
                self.depth -= count
                self._cond.notify_all()

    def _send(self, request: ExportTraceServiceRequest, count: int) -> bool:
        """Send until the next hop answers; False only when the shutdown deadline passed first."""
        delay = self._retry_initial
        while True:
            try:
                rejected = self._sender.send(request)
            except Retryable as exc:
                if self._past_deadline():
                    return False
                self._metrics.retried.inc()
                wait = exc.delay if exc.delay is not None else delay
                log.warning("forwarding failed, retrying", spans=count, error=str(exc)[:300], retry_in=round(wait, 3))
                with self._cond:
                    self._cond.wait_for(self._past_deadline, min(wait, self._retry_max))
                delay = min(delay * 2, self._retry_max)
                continue
            except Rejected as exc:
                self._metrics.failed.labels(reason="rejected").inc(count)
                log.error("the next hop rejected forwarded spans; not retried", spans=count, error=str(exc)[:300])
                return True
            except Exception as exc:  # a bug in a sender: count the request, keep the thread alive
                self._metrics.failed.labels(reason="error").inc(count)
                log.error("forwarding failed", spans=count, error=type(exc).__name__)
                return True
            if rejected:
                self._metrics.failed.labels(reason="rejected").inc(rejected)
                log.warning("the next hop rejected some forwarded spans", spans=rejected)
            self._metrics.forwarded.inc(count - rejected)
            return True


class ForwardGate:
    """A publisher that refuses new spans (``QueueFull``: UNAVAILABLE / 503) while the forwarding queue is
    full, so the collector holds them instead of the writer holding them in memory."""

    def __init__(self, publisher: Publisher, room: Callable[[], bool], always: bool = False) -> None:
        self._publisher = publisher
        self._room = room
        self._always = always
        """Refuse requests without LLM spans too (``--forward-all``: their other spans are forwarded)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._publisher, name)

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None,
                columns: AttributeColumns | None = None) -> Future[None]:
        if (records or self._always) and not self._room():
            raise QueueFull("the forwarding queue is full (the next hop is slow or down)")
        return self._publisher.publish(records, wire_bytes, columns)

    def close(self) -> None:
        self._publisher.close()
