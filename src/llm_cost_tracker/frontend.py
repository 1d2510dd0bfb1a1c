"""The receiving front every receiver flavour runs: prices, tokens, transforms, OTLP/gRPC, OTLP/HTTP and HTTP.

The all-in-one service and the Kafka receiver differ only in where accepted records go (the
publisher) and in what "ready" means; everything in front of the publisher is built here once, each
part from its section of the settings (``listeners``, ``access``, ``decode``, ``calls``, ``pricing``,
``privacy``). :func:`status_server` is the /metrics, /healthz, /readyz port every service runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from llm_cost_tracker.access.guard import AccessGuard
from llm_cost_tracker.access.setup import apply_label_limits, build_guard, guard_metrics, load_tokens
from llm_cost_tracker.access.tls import TlsFiles
from llm_cost_tracker.config import (
    CallWindowConfig,
    DecodeConfig,
    PricingConfig,
    Settings,
    StoreConfig,
    config_sections,
    listens,
)
from llm_cost_tracker.httpserver import HttpLimits, HttpServer, Response
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.ports import ensure_free
from llm_cost_tracker.pricing import ReloadingCatalog
from llm_cost_tracker.pricing._service import CatalogSyncer, export_catalog_metrics
from llm_cost_tracker.pricing._settings import PricingSettings, parse_pricing_settings
from llm_cost_tracker.sources.admission import MemoryBudget
from llm_cost_tracker.sources.export import ExportCore
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_grpc import OtlpGrpcServer, TraceExportHandler
from llm_cost_tracker.sources.otlp_http import TRACES_PATH, Answer, OtlpHttpHandler
from llm_cost_tracker.sources.otlp_records import warm_up
from llm_cost_tracker.sources.span_time import SpanTimeBounds
from llm_cost_tracker.storage.table import warm_up as grouping_warm_up
from llm_cost_tracker.transforms.calls import CallIdentity, CallWindow
from llm_cost_tracker.transforms.calls import warm_up as calls_warm_up
from llm_cost_tracker.transforms.detect import Detect
from llm_cost_tracker.transforms.price import Catalog, Price
from llm_cost_tracker.transforms.quirks import Quirks
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.transforms.scrub import ScrubNames
from llm_cost_tracker.transforms.usage import ExtractUsage
from llm_cost_tracker.types import Publisher, Transform

__all__ = ["FrontEnd", "call_identity", "decode_limits", "default_transforms", "load_catalog", "otlp_http_server",
           "status_server"]
log = get_logger("frontend")


def load_catalog(pricing: PricingConfig, store: StoreConfig) -> ReloadingCatalog:
    """The reloadable price catalog holder: bundled prices plus the user's ``pricing_file``; synced prices
    are kept in the embedded store's ``data_dir``."""
    return ReloadingCatalog(overrides=Path(pricing.pricing_file) if pricing.pricing_file else None,
                            data_dir=store.data_dir)


def default_transforms(catalog: Callable[[], Catalog], metrics: Metrics,
                       redact: Transform | None = None, pricing: PricingSettings | None = None) -> list[Transform]:
    """detect -> usage -> producer quirks -> scrub names -> price -> redact: the per-record stages every
    receiver runs.

    Names (span, service, tenant, operation, provider, models) are cleared of secrets and card numbers
    before pricing, which logs unknown models; attribute redaction is last: the earlier stages read what
    they need, and nothing is published unredacted.
    Without ``redact`` the default policy applies (content dropped, secrets masked; docs/redaction.md).
    """

    def on_unpriced(provider: str, model: str) -> None:
        suggest = getattr(catalog(), "suggest", None)
        near = suggest(provider, model, all_providers=False) if suggest is not None else []
        log.warning("model has no price; spans are stored unpriced", provider=provider, model=model,
                    did_you_mean=", ".join(near) or None)

    fallback = pricing.reported_cost_fallback if pricing is not None else False
    return [Detect(), ExtractUsage(), Quirks(), ScrubNames(metrics), Price(catalog, on_unpriced, fallback),
            redact or Redact(metrics=metrics)]


def _warm_up() -> None:
    """Load (or compile) the receivers' compiled code before the first Export needs it: the wire scan's (whose
    failure leaves the receiver on protobuf), call identity's window and the rows' grouping."""
    warm_up()
    calls_warm_up()
    error = grouping_warm_up()
    if error:
        log.error("the rows' grouping could not be compiled; it runs as Python, slower", error=error)


def call_identity(config: CallWindowConfig, metrics: Metrics) -> CallIdentity:
    """The call identity stage of a receiver, its window from its section (``settings.calls``), counted in ``metrics``."""
    calls = CallIdentity(CallWindow(config.call_window_entries, config.call_window_seconds),
                         on_duplicate=lambda rule: metrics.duplicate_spans.labels(rule=rule).inc(),
                         on_evict=lambda reason, n: metrics.call_window_evictions.labels(reason=reason).inc(n))
    metrics.call_window_entries.set_function(lambda: calls.size)
    return calls


def decode_limits(s: DecodeConfig) -> DecodeLimits:
    """The decoder's bounds from the decode section (``settings.decode``)."""
    return DecodeLimits(s.max_attributes_per_span, s.max_attribute_value_bytes, s.tenant_attribute,
                        s.max_spans_per_request, s.max_attributes_per_request, s.max_attribute_depth,
                        s.max_attribute_key_bytes)


def status_server(settings: Settings, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]],
                  guard: AccessGuard | None = None) -> HttpServer:
    """The /metrics, /healthz, /readyz port on ``http`` (bound, not started), its TLS and connection limit
    from the listeners' and access sections; /metrics needs an admin or metrics token when tokens are set.

    ``guard``: the receiver's (None: one over the tokens of ``settings``, for processes without a receiver).
    """
    server = HttpServer(settings.http, registry, ready, tls=settings.access.tls(),
                        limits=HttpLimits.from_config(settings.listeners))
    if guard is None:
        guard = build_guard(load_tokens(settings.access, settings.config_file), settings.access)
    guard_metrics(server, registry, guard)
    return server


def otlp_http_server(address: str, handler: OtlpHttpHandler, limits: HttpLimits,
                     tls: TlsFiles | None = None) -> HttpServer:
    """An HTTP listener serving ``POST /v1/traces`` with ``handler`` and nothing else (not started).

    ``limits.max_body_bytes`` bounds the body as sent (compressed); the handler bounds it inflated.
    """

    def response(answer: Answer) -> Response:
        return Response(answer.status, answer.body, answer.content_type, answer.headers)

    server = HttpServer(address, None, None, tls=tls, limits=limits, standard_routes=False,
                        errors=lambda headers, status, text: response(handler.body_refused(headers, status, text)))
    server.route("POST", TRACES_PATH, lambda request: response(handler(request.headers, request.body)))
    return server


class FrontEnd:
    """Everything between the network and a publisher, with its lifecycle.

    Use: ``prepare()`` (loads what can fail: redaction policy, prices, tokens), then ``bind()``
    (listens), optional extra HTTP routes on ``http``, then ``start()``; ``stop_accepting()`` and
    ``stop_http()`` on the way down. Every part is None until the step that builds it.

    Args:
        settings: validated settings.
        metrics: the process's metrics.
        catalog: price catalog holder (loaded from settings by default).
    """

    def __init__(self, settings: Settings, metrics: Metrics, catalog: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.catalog = catalog
        # prepare()
        self.redact: Redact | None = None
        self.pricing: PricingSettings | None = None
        self.syncer: CatalogSyncer | None = None
        self.tokens: Any = None
        """The reloadable token table (``access.tokens.ReloadingTokens``)."""
        self.guard: AccessGuard | None = None
        # bind()
        self.core: ExportCore | None = None
        self.handler: TraceExportHandler | None = None
        self.grpc: OtlpGrpcServer | None = None
        self.http: HttpServer | None = None
        self.otlp_http: HttpServer | None = None
        self.otlp_http_handler: OtlpHttpHandler | None = None

    def prepare(self) -> None:
        s = self.settings
        tables = config_sections(s.config_file)
        self.redact = Redact.from_config(s.privacy, tables, self.metrics)  # a bad [redaction] stops start-up here
        self.pricing = parse_pricing_settings(tables)  # a bad [pricing] table stops start-up here
        if self.catalog is None:
            self.catalog = load_catalog(s.pricing, s.store)
        self.metrics.spend.reported_tolerance = self.pricing.reported_cost_tolerance
        syncs = export_catalog_metrics(self.metrics.registry, self.catalog)
        self.syncer = CatalogSyncer(self.catalog, self.pricing, syncs) if getattr(self.catalog, "data_dir", None) \
            else None
        self.tokens = load_tokens(s.access, s.config_file)
        self.guard = build_guard(self.tokens, s.access)
        apply_label_limits(self.metrics.spend.folder, self.tokens.current)

    def bind(self, publisher: Publisher, ack_timeout: float, ready: Callable[[], tuple[bool, str]],
             serve_http: bool = True,
             passthrough: Callable[[ExportTraceServiceRequest, int], None] | None = None,
             tables: bool = False) -> None:
        """Build the Export handler in front of ``publisher`` and bind the listeners (not serving yet).

        ``passthrough`` takes the spans that are not LLM spans, untouched (``--forward-all``). ``tables``:
        ``publisher`` takes the columnar path's tables (the in-process queue), so that path runs where the
        ``columnar_path`` setting allows it.
        """
        s = self.settings
        listeners, tls = s.listeners, s.access.tls()
        ensure_free("otlp_grpc", listeners.otlp_grpc)
        if listens(listeners.otlp_http):
            ensure_free("otlp_http", listeners.otlp_http)
        if serve_http:
            ensure_free("http", listeners.http)
        self.core = ExportCore(  # one Export path for both protocols: same limits, budget, identity, counting
            default_transforms(lambda: self.catalog.current, self.metrics, self.redact, self.pricing), publisher,
            decode_limits(s.decode), self.metrics, guard=self.guard, ack_timeout=ack_timeout,
            calls=call_identity(s.calls, self.metrics), memory=MemoryBudget(listeners.max_decode_bytes),
            time_bounds=SpanTimeBounds.from_config(s.decode, s.store), passthrough=passthrough,
            stage_workers=listeners.stage_workers, columnar=tables and listeners.columnar_path)
        self.handler = TraceExportHandler(core=self.core)
        if listens(listeners.otlp_http):
            self._bind_otlp_http(self.core, tls)
        if serve_http:
            self.http = status_server(s, self.metrics.registry, ready, self.guard)
        self.grpc = OtlpGrpcServer(listeners.otlp_grpc, self.handler, listeners.max_message_bytes,
                                   listeners.grpc_workers, tls=tls, max_streams=listeners.grpc_max_streams,
                                   receive_timeout=listeners.grpc_receive_timeout_seconds)

    def _bind_otlp_http(self, core: ExportCore, tls: TlsFiles | None) -> None:
        """The OTLP/HTTP listener: its own port and thread pool (decoding off the event loop), the gRPC
        receiver's TLS, stream bound (as connections) and decode workers."""
        listeners = self.settings.listeners
        self.otlp_http_handler = OtlpHttpHandler(core, listeners.max_message_bytes, self.metrics.http_exports)
        limits = HttpLimits(max_body_bytes=listeners.max_message_bytes, max_connections=listeners.grpc_max_streams,
                            workers=listeners.grpc_workers, decompress=False)
        self.otlp_http = otlp_http_server(listeners.otlp_http, self.otlp_http_handler, limits, tls)

    @property
    def grpc_port(self) -> int:
        return self.grpc.port if self.grpc is not None else 0

    @property
    def otlp_http_port(self) -> int:
        return self.otlp_http.port if self.otlp_http is not None else 0

    @property
    def http_port(self) -> int:
        return self.http.port if self.http is not None else 0

    @property
    def accepting(self) -> bool:
        return self.handler is not None and self.handler.accepting

    def saturation(self) -> str:
        """Why the receiver cannot take another Export now ("" when it can), for /readyz."""
        return self.grpc.saturation() if self.grpc is not None else ""  # the OTLP/HTTP port refuses a connection over its cap with a 503 itself

    def start(self) -> None:
        if self.grpc is None:
            raise RuntimeError("FrontEnd.start() before bind()")
        threading.Thread(target=_warm_up, name="compiled-warm-up", daemon=True).start()
        self.grpc.start()
        if self.otlp_http is not None:
            self.otlp_http.start()
        if self.http is not None:
            self.http.start()  # after gRPC, so /readyz never answers 200 before Export is served
        if self.syncer is not None:
            self.syncer.start()  # [pricing] sync_url: sync now, then on the interval (no-op without a URL)

    def reload(self) -> None:
        """SIGHUP: reload the price catalog and the token table; on error keep what is in force."""
        if self.tokens is None:
            return  # not prepared: nothing loaded yet
        for name, holder in (("price catalog", self.catalog), ("auth tokens", self.tokens)):
            try:
                holder.reload()
            except Exception as exc:
                log.error(f"{name} reload failed; keeping the one in force", error=str(exc))
            else:
                log.info(f"{name} reloaded")
        apply_label_limits(self.metrics.spend.folder, self.tokens.current)

    def stop_accepting(self, grace: float) -> None:
        """Refuse new Exports (UNAVAILABLE, health NOT_SERVING) and wait up to ``grace`` for those in flight."""
        if self.handler is not None:
            self.handler.accepting = False
        if self.grpc is not None:
            self.grpc.stop(grace=grace)
        if self.otlp_http is not None and self.otlp_http_handler is not None:
            self.otlp_http_handler.wait_idle(grace)  # requests past the gate finish publishing; new ones get 503
            self.otlp_http.stop()

    def stop_http(self) -> None:
        if self.syncer is not None:
            self.syncer.stop()
        if self.http is not None:
            self.http.stop()
