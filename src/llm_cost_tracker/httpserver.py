"""The service's HTTP port: ``/metrics``, ``/healthz``, ``/readyz``, and routes other modules add.

Served by aiohttp's low-level server on its own asyncio loop in one thread: HTTP/1.1 keep-alive,
chunked bodies and the protocol's corner cases are the library's, and a slow or idle client costs a
socket and a coroutine, never a thread. JSON APIs (budgets, schedules) register plain synchronous
handlers with :meth:`HttpServer.route`; they run in a small bounded thread pool (they may query the
store), so the number of threads is fixed whatever the clients do.

What aiohttp does not bound, this module does (:class:`HttpLimits`, docs/hardening.md):

- the request head must arrive within ``head_seconds`` of connecting (or of the previous answer on
  a kept-alive connection): aiohttp's keep-alive timer, which also runs before the first request;
- the body must arrive within ``body_seconds`` of the head, however it trickles in (one byte every
  few seconds included), and is at most ``max_body_bytes`` whether sized or chunked;
- at most ``max_connections`` connections are open; one more is answered 503 and closed;
- a TLS handshake must finish within ``head_seconds``.

Every answer, protocol errors included, is JSON ``{"error": ...}``; a handler's exception is
answered 500 without its text (it may hold internal details) and logged by type.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llm_cost_tracker.access.tls import ReloadingSslContext, TlsFiles
from llm_cost_tracker.config import ListenersConfig, split_host_port
from llm_cost_tracker.log import get_logger

__all__ = ["MAX_BODY_BYTES", "Handler", "HttpLimits", "HttpServer", "Request", "Response", "loads_json"]
log = get_logger("http")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    """Extra header fields (e.g. ``Retry-After``)."""

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload, indent=None, sort_keys=True).encode() + b"\n")


Handler = Callable[[Request], Response]
def _fields(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header fields by lower-cased name, a repeated field's values joined with ", " (RFC 9110 5.3), so
    that a second ``Authorization`` is seen (and refused), not silently preferred."""
    out: dict[str, str] = {}
    for name, value in items:
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
MAX_BODY_BYTES = 1024 * 1024


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than the parser can follow."""


def loads_json(data: bytes | str) -> Any:
    """``json.loads`` whose only failure is ValueError: nesting too deep for the parser says so plainly.

    Python's parser raises RecursionError past ~1,000 levels; a handler that let it escape answered
    500 with the interpreter's message.
    """
    try:
        return json.loads(data)
    except RecursionError:
        raise JsonTooDeep("JSON nested too deep (over ~900 levels of arrays/objects)") from None


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds of the HTTP port (docs/hardening.md, "HTTP port")."""

    max_body_bytes: int = MAX_BODY_BYTES
    head_seconds: float = 15.0
    """Time to send a request head, from connecting or from the previous answer (also the keep-alive idle time)."""
    body_seconds: float = 30.0
    """Time to send the body once the head is in."""
    max_connections: int = 256
    workers: int = 8
    """Threads running route handlers (store queries, metrics rendering)."""
    decompress: bool = True
    """Let aiohttp undo a request's ``Content-Encoding``; False hands handlers the body as sent (the OTLP
    port decompresses itself, bounded, off the event loop)."""

    @classmethod
    def from_config(cls, listeners: ListenersConfig) -> HttpLimits:
        """The HTTP port's limits from the listeners' section (``http_max_connections``)."""
        return cls(max_connections=listeners.http_max_connections)


def _error_bytes(status: int, message: str) -> bytes:
    return json.dumps({"error": message}).encode() + b"\n"


def _web_response(status: int, body: bytes, content_type: str = "application/json", close: bool = False,
                  tls: bool = False, extra: tuple[tuple[str, str], ...] = ()) -> web.Response:
    headers = {"Content-Type": content_type, **dict(SECURITY_HEADERS), **dict(extra)}
    if tls:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    response = web.Response(status=status, body=body, headers=headers)
    if close:
        response.force_close()
    return response


class _TooLarge(Exception):
    pass


class _Connection(RequestHandler):
    """aiohttp's per-connection protocol, plus the connection cap, JSON protocol errors and half-close."""

    _manager: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._manager
        if server is not None and len(server.connections) >= server.max_connections:
            server.refused += 1
            body = _error_bytes(503, "too many connections; retry shortly")
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n").encode()
            transport.write(head + body)  # type: ignore[attr-defined]
            transport.write_eof()  # type: ignore[attr-defined]
            # close a moment later: closing with the client's request unread would reset the answer away
            self._loop.call_later(1.0, transport.close)
            self._manager = None  # connection_lost has nothing to undo
            self._force_close = True  # data_received ignores whatever the client sends meanwhile
            return
        super().connection_made(transport)

    def eof_received(self) -> bool:  # type: ignore[override]
        return True  # a client that half-closes after its request still gets the answer

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Bad request lines, headers or Content-Length, and oversized fields: JSON, connection closed."""
        if request.writer.output_size > 0:
            raise ConnectionError("answer already started")
        if status >= 500:
            log.error("http request failed", error=type(exc).__name__ if exc else "")
            text = "internal error; reported to the operator"
        else:
            # the parser's words, without the bytes it quotes (a header line may hold a token)
            reason = str(getattr(exc, "message", "") or message or "").split(":")[0].split("\n")[0].strip()
            text = f"malformed HTTP request: {reason[:120]}" if reason else "malformed HTTP request"
        return _web_response(status, _error_bytes(status, text), close=True)


class _Server(web.Server):
    """aiohttp's low-level server making :class:`_Connection` protocols and counting what it refused."""

    def __init__(self, handler: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.refused = 0

    def __call__(self) -> RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)


class HttpServer:
    """Serves the registered routes on ``address`` from its own thread.

    Args:
        address: HOST:PORT (port 0 picks a free one; see ``port``).
        registry: the Prometheus registry served on ``/metrics``.
        ready: returns (ready, reason) for ``/readyz``.
        tls: serve HTTPS (mutual TLS when it names a client CA), certificates reloaded on change.
        limits: time, size and connection bounds.
        standard_routes: serve ``/metrics``, ``/healthz`` and ``/readyz`` (False: only the routes added).
        errors: builds the answer to a body over the size limit (413) or too slow (408) from the request's
            header fields, for ports whose protocol fixes the error body's encoding (OTLP/HTTP); JSON otherwise.
    """

    def __init__(self, address: str, registry: CollectorRegistry | None,
                 ready: Callable[[], tuple[bool, str]] | None, tls: TlsFiles | None = None,
                 limits: HttpLimits = HttpLimits(), standard_routes: bool = True,
                 errors: Callable[[dict[str, str], int, str], Response] | None = None) -> None:
        self.limits = limits
        self._errors = errors
        self._routes: dict[tuple[str, str], Handler] = {}
        self._prefix_routes: list[tuple[str, str, Handler]] = []
        self._inline: set[str] = set()
        if standard_routes:
            assert registry is not None and ready is not None
            self._standard_routes(registry, ready)
        self._tls = ReloadingSslContext(tls) if tls else None
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="http")
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_exceptions)
        self._thread = threading.Thread(target=self._loop.run_forever, name="http", daemon=True)
        self._thread.start()
        host, port = split_host_port(address)
        try:
            self._listener, self.port = asyncio.run_coroutine_threadsafe(self._bind(host, port), self._loop).result()
        except BaseException:
            self._close_loop()
            raise

    def _standard_routes(self, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]]) -> None:
        self.route("GET", "/metrics", lambda _r: Response(200, generate_latest(registry), CONTENT_TYPE_LATEST))
        self.route("GET", "/healthz", lambda _r: Response.json(200, {"status": "ok"}))

        def readyz(_r: Request) -> Response:
            ok, reason = ready()
            return Response.json(200 if ok else 503, {"status": "ready" if ok else "not ready", "reason": reason})

        self.route("GET", "/readyz", readyz)
        self._inline = {"/healthz", "/readyz"}  # cheap: answered on the loop, even when the pool is busy

    async def _bind(self, host: str, port: int) -> tuple[asyncio.AbstractServer, int]:
        self._server = _Server(self._handle, self.limits.max_connections, access_log=None,
                               keepalive_timeout=self.limits.head_seconds, lingering_time=0.0,
                               max_line_size=65536, max_field_size=16384,
                               auto_decompress=self.limits.decompress)
        context: ssl.SSLContext | None = self._tls.server_context() if self._tls is not None else None
        listener = await self._loop.create_server(
            self._server, host, port, ssl=context, backlog=1024, reuse_address=True, start_serving=False,
            ssl_handshake_timeout=self.limits.head_seconds if context is not None else None)
        return listener, int(listener.sockets[0].getsockname()[1])

    def route(self, method: str, path: str, handler: Handler, prefix: bool = False, inline: bool = False) -> None:
        """Serve ``handler`` for ``method`` on ``path`` (or every path under it, with ``prefix``).

        ``inline``: a GET answered on the event loop, without a hop to the pool; only for handlers that
        never block (memory only), like /healthz.
        """
        if inline and method == "GET" and not prefix:
            self._inline.add(path)
        if prefix:
            self._prefix_routes.append((method, path, handler))
        else:
            self._routes[(method, path)] = handler

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._server.connections)

    @property
    def refused_connections(self) -> int:
        """Connections answered 503 because ``max_connections`` were open."""
        return self._server.refused

    def _find(self, method: str, path: str) -> Handler | None:
        if method == "HEAD":
            method = "GET"  # the same answer without its body (aiohttp sends no body to HEAD)
        handler = self._routes.get((method, path))
        if handler is None:
            for route_method, prefix, candidate in self._prefix_routes:
                if route_method == method and path.startswith(prefix):
                    return candidate
        return handler

    def _dispatch(self, request: Request) -> Response:
        handler = self._find(request.method, request.path)
        if handler is None:
            known = {p for _, p in self._routes} | {p for _, p, _ in self._prefix_routes}
            status = 405 if request.path in known else 404
            return Response.json(status, {"error": f"no route for {request.method} {request.path[:200]}"})
        try:
            return handler(request)
        except Exception as exc:  # a handler bug must not take the port down, nor show its internals
            log.error("http handler failed", path=request.path[:200], error=type(exc).__name__)
            return Response.json(500, {"error": "internal error; reported to the operator"})

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        limit = self.limits.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(65536):
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _refuse_body(self, raw: web.BaseRequest, status: int, message: str) -> web.Response:
        """408 or 413, connection closed (the unread body must not be parsed as the next request)."""
        tls = self._tls is not None
        if self._errors is not None:
            answer = self._errors(_fields(raw.headers.items()), status, message)
            return _web_response(answer.status, answer.body, answer.content_type, close=True, tls=tls,
                                 extra=answer.headers)
        return _web_response(status, _error_bytes(status, message), close=True, tls=tls)

    async def _handle(self, raw: web.BaseRequest) -> web.StreamResponse:
        tls = self._tls is not None
        if raw.content_length is not None and raw.content_length > self.limits.max_body_bytes:
            return self._refuse_body(raw, 413, f"body over {self.limits.max_body_bytes} bytes")
        try:
            async with asyncio.timeout(self.limits.body_seconds):
                body = await self._read_body(raw)
        except TimeoutError:
            return self._refuse_body(raw, 408, f"body not received within {self.limits.body_seconds:g}s")
        except _TooLarge:
            return self._refuse_body(raw, 413, f"body over {self.limits.max_body_bytes} bytes")
        path, _, query = raw.raw_path.partition("?")
        request = Request(raw.method, path, query, _fields(raw.headers.items()), body)
        if request.method in ("GET", "HEAD") and request.path in self._inline:
            response = self._dispatch(request)
        else:
            response = await self._loop.run_in_executor(self._pool, self._dispatch, request)
        return _web_response(response.status, response.body, response.content_type, tls=tls, extra=response.headers)

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listener.start_serving(), self._loop).result(timeout=10)

    def stop(self) -> None:
        async def close() -> None:
            self._listener.close()
            # as aiohttp's own runner does: idle keep-alive connections close now (without this each one held
            # the shutdown for its whole timeout); a request in progress still gets up to 1 s to finish
            self._server.pre_shutdown()
            await self._server.shutdown(1.0)

        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            except Exception as exc:
                log.warning("http listener did not close cleanly", error=type(exc).__name__)
        self._close_loop()

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Resets and failed handshakes are the client's problem, not a traceback in the service log."""
    exc = context.get("exception")
    if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, asyncio.CancelledError)):
        return
    log.warning("http loop error", message=str(context.get("message", ""))[:200],
                error=type(exc).__name__ if exc else "")
