"""Issue 15's resource probes (gRPC starvation, memory, HTTP slowloris, chunked bodies, deep JSON, parking).

Each probe starts its own ``llm-cost-tracker run`` on 127.0.0.1, is bounded in time and count, and
returns a dict of figures with ``ok`` saying whether the guarantee of docs/hardening.md held.
``benchmarks/attack.py`` runs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, http_json, make_request, make_span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "attack-probe-token"
BEARER = (("authorization", f"Bearer {TOKEN}"),)


def status_of(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Peak RSS (MiB) and thread count of a process, sampled every 50 ms while in a ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_mib = 0.0
        self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.rss_mib = max(self.rss_mib, status_of(self.pid, "VmRSS") / 1024)
                self.threads = max(self.threads, status_of(self.pid, "Threads"))
            except OSError:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def service(workdir: Path, name: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
    return ServiceProcess(workdir / name, "--auth-token", TOKEN, *args, env=env).start()


def stalled(channel: grpc.Channel, n: int, release: threading.Event, token: bool) -> list[grpc.Future]:
    def never() -> Iterator[bytes]:
        release.wait()
        return
        yield b""

    call = channel.stream_unary(METHOD)
    return [call.future(never(), timeout=60, metadata=BEARER if token else ()) for _ in range(n)]


def probe_grpc_starvation(workdir: Path, seconds: float = 20.0) -> dict[str, Any]:
    """70 token-less and 8 authenticated streams that never send, topped up all along; real Exports beside them."""
    svc = service(workdir, "grpc-starvation")
    release = threading.Event()
    ok = failed = 0
    codes: dict[str, int] = {}
    latencies: list[float] = []
    ready: set[int] = set()
    try:
        with Sampler(svc.proc.pid) as sampler, grpc.insecure_channel(svc.endpoint) as hostile, \
                grpc.insecure_channel(svc.endpoint) as good:
            stub = trace_service_pb2_grpc.TraceServiceStub(good)
            calls: list[grpc.Future] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                anonymous = [c for c in calls if not c.done() and not getattr(c, "token", False)]
                holders = [c for c in calls if not c.done() and getattr(c, "token", False)]
                new_anonymous = stalled(hostile, 70 - len(anonymous), release, token=False)
                new_holders = stalled(hostile, 8 - len(holders), release, token=True)
                for c in new_holders:
                    c.token = True  # type: ignore[attr-defined]
                calls += new_anonymous + new_holders
                for _ in range(10):
                    started = time.perf_counter()
                    try:
                        stub.Export(make_request([make_span(genai_attributes()) for _ in range(100)]), timeout=10,
                                    metadata=BEARER)
                        ok += 1
                        latencies.append(time.perf_counter() - started)
                    except grpc.RpcError as exc:
                        failed += 1
                        codes[exc.code().name] = codes.get(exc.code().name, 0) + 1
                ready.add(http_json(svc.http_url + "/readyz")[0])
            release.set()
            hostile_codes: dict[str, int] = {}
            for call in calls:
                exc = call.exception(timeout=60)
                name = exc.code().name if exc is not None else "OK"
                hostile_codes[name] = hostile_codes.get(name, 0) + 1
    finally:
        release.set()
        code = svc.stop()
    latencies.sort()
    return {"exports_ok": ok, "exports_failed": failed, "export_errors": codes,
            "export_p50_ms": round(1000 * latencies[len(latencies) // 2]) if latencies else None,
            "export_max_ms": round(1000 * latencies[-1]) if latencies else None,
            "hostile_streams": len(calls), "hostile_outcomes": hostile_codes, "readyz_seen": sorted(ready),
            "peak_threads": sampler.threads, "peak_rss_mib": round(sampler.rss_mib), "exit": code,
            "ok": failed == 0 and ok > 0 and code == 0}


def worst_case_payload(target_bytes: int) -> bytes:
    """An Export of spans with the usage attributes and nine 1-byte ones (the shape that costs most per byte),
    built by repeating one serialized span (fast enough for 13 MiB)."""
    span = make_span({**genai_attributes(), **{f"k{j}": "v" for j in range(9)}})
    one = ScopeSpans(spans=[span]).SerializeToString()  # field tag + length + span bytes
    request = make_request([span])
    scope = request.resource_spans[0].scope_spans[0]
    del scope.spans[:]
    copies = min(target_bytes // len(one), 65_536)
    scope.MergeFromString(one * copies)
    return request.SerializeToString()


def probe_big_requests(workdir: Path, clients: int = 6, mib: int = 13, rounds: int = 3) -> dict[str, Any]:
    """``clients`` concurrent ``mib`` MiB Exports of the worst shape, ``rounds`` times: peak RSS and answers."""
    payload = worst_case_payload(mib * 2**20)
    svc = service(workdir, "big-requests", "--queue-capacity", "1000000")
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def send() -> None:
        with grpc.insecure_channel(svc.endpoint, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
            export = channel.unary_unary(METHOD)
            for _ in range(rounds):
                try:
                    export(payload, timeout=120, metadata=BEARER)
                    name = "OK"
                except grpc.RpcError as exc:
                    name = exc.code().name
                with lock:
                    codes[name] = codes.get(name, 0) + 1

    try:
        with Sampler(svc.proc.pid) as sampler:
            before = status_of(svc.proc.pid, "VmRSS") / 1024
            threads = [threading.Thread(target=send) for _ in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(600)
    finally:
        code = svc.stop(timeout=300)
    return {"payload_mib": round(len(payload) / 2**20, 1), "requests": clients * rounds, "answers": codes,
            "rss_before_mib": round(before), "peak_rss_mib": round(sampler.rss_mib), "exit": code,
            "ok": sampler.rss_mib < 1024 and code == 0}


def probe_slowloris(workdir: Path, connections: int = 1019, gap: float = 5.0, seconds: float = 40.0) -> dict[str, Any]:
    """``connections`` sockets trickling a request head one byte every ``gap`` s for ``seconds``."""
    svc = service(workdir, "slowloris")
    head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    socks: list[socket.socket] = []
    cut = 0
    healthz: dict[int, int] = {}
    try:
        with Sampler(svc.proc.pid) as sampler:
            for _ in range(connections):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", svc.http_port), timeout=5))
                except OSError:
                    cut += 1
            end = time.monotonic() + seconds
            position = 0
            while time.monotonic() < end and socks:
                alive = []
                for sock in socks:
                    try:
                        sock.send(head[position:position + 1])
                        alive.append(sock)
                    except OSError:
                        cut += 1
                        sock.close()
                socks, position = alive, position + 1
                status = http_json(svc.http_url + "/healthz")[0] if True else 0
                healthz[status] = healthz.get(status, 0) + 1
                time.sleep(gap)
            still_open = 0
            for sock in socks:
                sock.settimeout(0.5)
                try:
                    still_open += sock.recv(1) != b"" and 1 or 0
                except TimeoutError:
                    still_open += 1
                except OSError:
                    pass
            after = http_json(svc.http_url + "/healthz")[0]
    finally:
        for sock in socks:
            sock.close()
        code = svc.stop()
    return {"connections": connections, "cut_or_refused": cut, "still_open_at_end": still_open,
            "healthz_during": healthz, "healthz_after": after, "peak_threads": sampler.threads,
            "peak_rss_mib": round(sampler.rss_mib), "exit": code,
            "ok": still_open == 0 and after == 200 and sampler.threads < 200 and code == 0}


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def probe_http_bodies(workdir: Path) -> dict[str, Any]:
    """A chunked body must not be read as the next request; JSON 100,000 deep must be a 400, not a 500."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "budgets.toml"
    config.write_text('[[budgets]]\nname = "probe"\nlimit_usd = 10\nperiod = "day"\n')
    svc = service(workdir, "http-bodies", "--config", str(config))
    try:
        smuggled = b"GET /v1/schedules/x HTTP/1.1\r\nHost: a\r\n\r\n"
        body = b"{}" + smuggled
        chunked = (b"POST /v1/advice HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
                   + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        answer = raw_exchange(svc.http_port, chunked)
        deep: dict[str, Any] = {}
        for path in ("/v1/advice", "/v1/schedules"):
            status, doc = http_json(svc.http_url + path, b"[" * 100_000 + b"]" * 100_000, "POST", token=TOKEN)
            deep[path] = (status, doc.get("error", "")[:80])
    finally:
        code = svc.stop()
    responses = answer.count(b"HTTP/1.1 ")
    return {"chunked_responses": responses, "chunked_status": answer[:12].decode(errors="replace"),
            "deep_json": deep, "exit": code,
            "ok": responses == 1 and all(s == 400 and "Recursion" not in e for s, e in deep.values()) and code == 0}


def probe_unwritable_store(workdir: Path, spans: int = 10_000) -> dict[str, Any]:
    """Acknowledge ``spans`` spans, make the data dir read-only (setpriv drops the DAC override), SIGTERM."""
    if shutil.which("setpriv") is None:
        return {"skipped": "no setpriv", "ok": True}
    results: dict[str, Any] = {}
    for case, fallback_writable in (("fallback_writable", True), ("nowhere_writable", False)):
        tmpdir = workdir / f"tmp-{case}"
        tmpdir.mkdir(parents=True)
        data = workdir / f"store-{case}"

        class Unprivileged(ServiceProcess):
            def command(self) -> list[str]:
                return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
                        "-dac_override,-dac_read_search", "--", *super().command()]

        svc = Unprivileged(data, "--batch-age-seconds", "600", "--batch-size", "100000",
                           env={"TMPDIR": str(tmpdir), "LCT_SHUTDOWN_TIMEOUT_SECONDS": "3"})
        svc.log_path = str(workdir / f"{case}.log")
        svc.start()
        if not fallback_writable:
            subprocess.run(["chmod", "a-w", str(tmpdir)], check=True)
        subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
        acked = 0
        with grpc.insecure_channel(svc.endpoint) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            for _ in range(spans // 500):
                stub.Export(make_request([make_span(genai_attributes()) for _ in range(500)]), timeout=30)
                acked += 500
        code = svc.stop(timeout=120)
        subprocess.run(["chmod", "-R", "u+w", str(data), str(tmpdir)], check=False)
        parked = sum(len(p.read_text().splitlines()) for p in tmpdir.glob("*/parked-*.jsonl"))
        log = Path(svc.log_path).read_text()
        reported = 0
        for line in log.splitlines():
            if '"spans_lost"' in line:
                import json

                reported = json.loads(line)["spans_lost"]
        results[case] = {"acknowledged": acked, "parked_in_fallback": parked, "reported_lost": reported,
                         "exit": code, "silently_lost": acked - parked - reported}
    results["ok"] = all(r["silently_lost"] == 0 for r in results.values() if isinstance(r, dict)) and \
        results["fallback_writable"]["exit"] == 0 and results["nowhere_writable"]["exit"] != 0
    return results


PROBES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "grpc_starvation": probe_grpc_starvation,
    "big_requests": probe_big_requests,
    "slowloris": probe_slowloris,
    "http_bodies": probe_http_bodies,
    "unwritable_store": probe_unwritable_store,
}
"""Name -> probe, in the order attack.py runs them."""

if os.environ.get("LCT_ATTACK_QUICK"):
    PROBES["slowloris"] = lambda w: probe_slowloris(w, connections=300, gap=2.0, seconds=20.0)
