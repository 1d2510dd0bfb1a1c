"""The service's HTTP port: ``/metrics``, ``/healthz``, ``/readyz``, and routes other modules add.

A small threaded stdlib server: the endpoints are few and cheap, and it keeps the dependency list
short. JSON APIs (budgets, schedules) register handlers with :meth:`HttpServer.route`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llm_cost_tracker.access.tls import ReloadingSslContext, TlsFiles
from llm_cost_tracker.config import split_host_port


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

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload, indent=None, sort_keys=True).encode() + b"\n")


Handler = Callable[[Request], Response]
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that wraps each accepted socket in the TLS context in force, if any."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: ReloadingSslContext | None) -> None:
        self._tls = tls
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self._tls is not None:
            sock.settimeout(10)
            # the handshake happens in the request thread on first read, so a slow client blocks no one
            sock = self._tls.current().wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes and resets are the client's problem, not a traceback in our log
MAX_BODY_BYTES = 1024 * 1024


class HttpServer:
    """Serves the registered routes on ``address`` from a daemon thread.

    Args:
        address: HOST:PORT (port 0 picks a free one; see ``port``).
        registry: the Prometheus registry served on ``/metrics``.
        ready: returns (ready, reason) for ``/readyz``.
        tls: serve HTTPS (mutual TLS when it names a client CA), certificates reloaded on change.
    """

    def __init__(self, address: str, registry: CollectorRegistry,
                 ready: Callable[[], tuple[bool, str]], tls: TlsFiles | None = None) -> None:
        self._routes: dict[tuple[str, str], Handler] = {}
        self._prefix_routes: list[tuple[str, str, Handler]] = []
        self.route("GET", "/metrics", lambda _r: Response(200, generate_latest(registry), CONTENT_TYPE_LATEST))
        self.route("GET", "/healthz", lambda _r: Response.json(200, {"status": "ok"}))

        def readyz(_r: Request) -> Response:
            ok, reason = ready()
            return Response.json(200 if ok else 503, {"status": "ready" if ok else "not ready", "reason": reason})

        self.route("GET", "/readyz", readyz)
        host, port = split_host_port(address)
        self._tls = ReloadingSslContext(tls) if tls else None
        self._httpd = _Server((host, port), self._handler_class(), self._tls)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)

    def route(self, method: str, path: str, handler: Handler, prefix: bool = False) -> None:
        """Serve ``handler`` for ``method`` on ``path`` (or every path under it, with ``prefix``)."""
        if prefix:
            self._prefix_routes.append((method, path, handler))
        else:
            self._routes[(method, path)] = handler

    def _dispatch(self, request: Request) -> Response:
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            for method, prefix, candidate in self._prefix_routes:
                if method == request.method and request.path.startswith(prefix):
                    handler = candidate
                    break
        if handler is None:
            known = {p for _, p in self._routes} | {p for _, p, _ in self._prefix_routes}
            status = 405 if request.path in known else 404
            return Response.json(status, {"error": f"no route for {request.method} {request.path}"})
        try:
            return handler(request)
        except Exception as exc:  # a handler bug must not take the port down
            return Response.json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # a client that stalls mid-request (or sends less than its Content-Length) frees the thread

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """Protocol errors (bad request line, unsupported method, URI too long) answered in JSON too."""
                short = self.responses.get(code, ("error", ""))[0]
                body = json.dumps({"error": message or short}).encode() + b"\n"
                self.send_response(code, short)
                self.send_header("Connection", "close")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.close_connection = True
                if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                    self.wfile.write(body)

            def _serve(self) -> None:
                raw_length = self.headers.get("Content-Length") or "0"
                length = int(raw_length) if raw_length.strip().isdigit() else -1
                if length < 0:
                    self.close_connection = True  # the body's end is unknown, so the connection cannot be reused
                    response = Response.json(400, {"error": f"Content-Length must be a byte count, got {raw_length!r}"})
                elif length > MAX_BODY_BYTES:
                    self.close_connection = True  # the unread body must not be parsed as the next request
                    response = Response.json(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                else:
                    path, _, query = self.path.partition("?")
                    request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()},
                                      self.rfile.read(length) if length else b"")
                    response = server._dispatch(request)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in SECURITY_HEADERS:
                    self.send_header(name, value)
                if server._tls is not None:
                    self.send_header("Strict-Transport-Security", "max-age=31536000")
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # access logs would drown the service log; metrics count requests instead

        return _Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
