"""The HTTP port under hostile clients: whole-request deadlines, chunked bodies, a connection cap, no thread growth."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from llm_cost_tracker.httpserver import HttpLimits, HttpServer, Response

LIMITS = HttpLimits(head_seconds=1.0, body_seconds=1.0, max_connections=20, max_body_bytes=1000)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    http = HttpServer("127.0.0.1:0", CollectorRegistry(), lambda: (True, "ok"), limits=LIMITS)
    http.route("POST", "/echo", lambda r: Response.json(200, {"body": r.body.decode()}))
    http.start()
    yield http
    http.stop()


def connect(server: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def trickle(sock: socket.socket, data: bytes, gap: float) -> int:
    """Send ``data`` a byte at a time, ``gap`` seconds apart; the number of bytes sent before the server closed."""
    sock.settimeout(gap)
    for i, byte in enumerate(data):
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(65536, socket.MSG_PEEK) == b"":
                return i + 1  # the server closed (or answered and closed)
        except TimeoutError:
            continue
        except OSError:
            return i
        else:
            return i + 1  # the server answered before the request was complete
    return len(data)


def test_a_trickled_head_is_cut_off_however_often_bytes_arrive(server: HttpServer) -> None:
    """One byte every 0.2 s (each read well within any per-read timeout) cannot hold a connection past the head deadline."""
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
    with connect(server) as sock:
        sent = trickle(sock, head, 0.2)  # ~18 s if never cut
    assert sent < len(head)


def test_a_trickled_body_is_answered_408(server: HttpServer) -> None:
    """A body sent a byte at a time past the body deadline gets 408 and the connection closed."""
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 60\r\n\r\n")
        sent = trickle(sock, b"x" * 60, 0.2)
        sock.settimeout(10)
        answer = read_all(sock)
    assert sent < 60
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_chunked_body_is_read_as_a_body_not_as_the_next_request(server: HttpServer) -> None:
    """A chunked body reaches the handler whole, and the request after it on the connection is served too."""
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                     b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert b'{"body": "hello world"}' in answer


def test_chunked_body_over_the_limit_is_413(server: HttpServer) -> None:
    """The body limit applies to chunked bodies as to sized ones."""
    chunk = b"x" * 600
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + (b"258\r\n" + chunk + b"\r\n") * 2 + b"0\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_connections_are_capped_and_cost_no_threads(server: HttpServer) -> None:
    """Past max_connections a client gets a JSON 503; idle connections add no thread."""
    before = threading.active_count()
    held = [connect(server) for _ in range(LIMITS.max_connections)]
    try:
        deadline = time.monotonic() + 10
        while server.connections < LIMITS.max_connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() == before
        with connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"too many connections" in answer
        assert server.refused_connections == 1
    finally:
        for sock in held:
            sock.close()
