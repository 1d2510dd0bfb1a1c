"""The ClickHouse HTTP interface over the embedded store: aiohttp on an asyncio loop in a thread.

What ClickHouse clients send is honoured: the query in ``?query=`` and/or the body (``Content-Encoding``
gzip/deflate/zstd/lz4), ``default_format`` / ``X-ClickHouse-Format``, ``database`` /
``X-ClickHouse-Database``, ``param_*`` query parameters, ``query_id``, the settings they set at connect
(see :func:`~llm_cost_tracker.sql_http._sandbox.client_settings`) and ``enable_http_compression`` with
``Accept-Encoding``. Answers carry the headers clients read: ``X-ClickHouse-Query-Id``,
``X-ClickHouse-Format``, ``X-ClickHouse-Timezone``, ``X-ClickHouse-Summary``, and on failure
``X-ClickHouse-Exception-Code`` with a ``Code: N. DB::Exception: ...`` body.

Credentials are the service's tokens, in any form ClickHouse clients send a password: HTTP basic (any
user name), ``X-ClickHouse-Key``, ``?password=``, or ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import ssl
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from llm_cost_tracker.access.tokens import Principal, TokenTable
from llm_cost_tracker.config import SqlHttpConfig, split_host_port
from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sql_http._engine import Result, SqlEngine
from llm_cost_tracker.sql_http._errors import SqlError
from llm_cost_tracker.sql_http._sandbox import Policy, client_settings

__all__ = ["SqlHttpServer"]
log = get_logger("sql_http")

_CONTENT_TYPES = {"JSON": "application/json", "JSONCompact": "application/json", "JSONEachRow": "application/x-ndjson",
                  "CSV": "text/csv", "CSVWithNames": "text/csv", "TabSeparated": "text/tab-separated-values",
                  "TSV": "text/tab-separated-values", "TabSeparatedWithNames": "text/tab-separated-values",
                  "TabSeparatedWithNamesAndTypes": "text/tab-separated-values"}
MAX_QUERY_BYTES = 1024 * 1024
_ANONYMOUS = Principal(None, admin=False)


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    raise SqlError(353, "UNKNOWN_COMPRESSION_METHOD", f"Unknown Content-Encoding {encoding!r}")


def _compress(data: bytes, accept: str) -> tuple[bytes, str]:
    """Compress with the first encoding of ``Accept-Encoding`` we speak (client order), or not at all."""
    for token in accept.split(","):
        name = token.split(";")[0].strip().lower()
        if name == "gzip":
            return gzip.compress(data, compresslevel=3), "gzip"
        if name == "deflate":
            return zlib.compress(data, 3), "deflate"
        if name == "zstd":
            import zstandard

            return zstandard.ZstdCompressor(level=3).compress(data), "zstd"
        if name == "lz4":
            import lz4.frame

            return bytes(lz4.frame.compress(data)), "lz4"
    return data, ""


class SqlHttpServer:
    """Serves sandboxed reads of ``engine`` on ``config.sql_http`` from its own thread.

    Args:
        config: address and limits.
        engine: runs the queries.
        tokens: returns the token table in force (reloaded on SIGHUP by the service).
        tls: an SSL context provider (``ReloadingSslContext``) to serve HTTPS, or None.
    """

    def __init__(self, config: SqlHttpConfig, engine: SqlEngine, tokens: Callable[[], TokenTable],
                 tls: Any = None) -> None:
        self.config = config
        self.engine = engine
        self._tokens = tokens
        self._tls = tls
        host, port = split_host_port(config.sql_http)
        self.loopback_only = not tokens().enabled and host not in ("127.0.0.1", "::1", "localhost")
        self.host = "127.0.0.1" if self.loopback_only else host
        self._requested_port = port
        self.port = 0
        self._pool = ThreadPoolExecutor(config.sql_max_concurrent, thread_name_prefix="sql")
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="sql-http", daemon=True)
        self.timezone = engine.scalar("SELECT timezone()") or "UTC"
        self.version = engine.scalar("SELECT version()")

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    def _ssl(self) -> ssl.SSLContext | None:
        if self._tls is None:
            return None
        base = self._tls.current()
        reloading = self._tls

        def pick(sock: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            sock.context = reloading.current()  # certificates rotated on disk apply to new connections

        base.sni_callback = pick
        return base  # type: ignore[no-any-return]

    def start(self) -> None:
        """Bind and serve (raises OSError when the address is taken)."""
        app = web.Application(client_max_size=MAX_QUERY_BYTES)
        app.router.add_route("*", "/", self._query)
        app.router.add_get("/ping", self._ok)
        app.router.add_get("/replicas_status", self._ok)
        self._slots = asyncio.Semaphore(self.config.sql_max_concurrent)

        async def bind() -> int:
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self._requested_port, ssl_context=self._ssl())
            await site.start()
            server = site._server
            assert isinstance(server, asyncio.Server) and server.sockets
            return int(server.sockets[0].getsockname()[1])

        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(bind(), self._loop).result(30)
        if self.loopback_only:
            log.warning("SQL endpoint bound to loopback only: no tokens are configured, so it has no "
                        "authentication; configure [auth] tokens to serve it on other addresses",
                        requested=self.config.sql_http, sql_http=f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _ok(self, _request: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    def principal(self, request: web.Request) -> Principal | None:
        """The caller named by the request's password or token; None when refused."""
        table = self._tokens()
        if not table.enabled:
            return _ANONYMOUS
        secret = request.headers.get("X-ClickHouse-Key") or request.query.get("password", "")
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if not secret and scheme.lower() == "basic":
            try:
                secret = base64.b64decode(value.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        elif not secret and scheme.lower() == "bearer":
            secret = value.strip()
        return table.lookup(secret) if secret else None

    def policy(self, principal: Principal) -> Policy:
        c = self.config
        return Policy(principal.tenant.name if principal.tenant is not None else None, c.sql_max_execution_seconds,
                      c.sql_max_result_rows, c.sql_max_result_bytes, c.sql_max_memory_bytes, c.sql_max_threads)

    async def _query(self, request: web.Request) -> web.Response:
        query_id = request.query.get("query_id", "")
        try:
            principal = self.principal(request)
            if principal is None:
                raise SqlError(516, "AUTHENTICATION_FAILED", "default: Authentication failed: password is "
                                                             "incorrect, or there is no user with such name")
            params = {k: v for k, v in request.query.items()}
            sql = params.get("query", "")
            if request.method == "POST":
                body = _decompress(await request.read(), request.headers.get("Content-Encoding", ""))
                sql = f"{sql}\n{body.decode()}" if sql else body.decode()
            elif request.method not in ("GET", "HEAD"):
                raise SqlError(1, "UNSUPPORTED_METHOD", f"HTTP method {request.method} is not supported")
            if not sql.strip():
                return web.Response(text="Ok.\n")
            policy = self.policy(principal)
            settings = client_settings(params, policy)
            fmt = params.get("default_format") or request.headers.get("X-ClickHouse-Format") or "TabSeparated"
            database = params.get("database") or request.headers.get("X-ClickHouse-Database") or None
            query_params = {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}
            result = await self._run(sql, fmt, policy, database, query_params, settings, query_id)
        except SqlError as exc:
            headers = {"X-ClickHouse-Exception-Code": str(exc.code), "X-ClickHouse-Timezone": self.timezone}
            if query_id:
                headers["X-ClickHouse-Query-Id"] = query_id
            return web.Response(status=exc.status, body=exc.body(), headers=headers,
                                content_type="text/plain", charset="utf-8")
        return self._answer(request, result)

    async def _run(self, sql: str, fmt: str, policy: Policy, database: str | None, params: dict[str, str],
                   settings: dict[str, str], query_id: str) -> Result:
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.config.sql_max_execution_seconds)
        except TimeoutError:
            raise SqlError(202, "TOO_MANY_SIMULTANEOUS_QUERIES",
                           f"Too many simultaneous queries. Maximum: {self.config.sql_max_concurrent}") from None
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, lambda: self.engine.run(sql, fmt, policy, database=database, params=params,
                                                    settings=settings, query_id=query_id))
        finally:
            self._slots.release()

    def _answer(self, request: web.Request, result: Result) -> web.Response:
        body = result.body
        headers = {"X-ClickHouse-Query-Id": result.query_id, "X-ClickHouse-Format": result.format,
                   "X-ClickHouse-Timezone": self.timezone, "X-ClickHouse-Summary": json.dumps(result.summary()),
                   "X-ClickHouse-Server-Display-Name": "llm-cost-tracker"}
        if request.query.get("enable_http_compression") == "1":
            body, encoding = _compress(body, request.headers.get("Accept-Encoding", ""))
            if encoding:
                headers["Content-Encoding"] = encoding
        content_type = _CONTENT_TYPES.get(result.format, "application/octet-stream")
        if content_type.startswith("text/"):
            content_type += "; charset=UTF-8"
        headers["Content-Type"] = content_type
        return web.Response(body=body, headers=headers)
