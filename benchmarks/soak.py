"""Soak: the all-in-one service at 80% of its measured capacity, with a 3x burst and a restart.

One run, in order:

1. capacity: send flat out for ``--capacity-seconds`` and measure the rows the service writes per
   second once its queue is saturated (its own rows-written counter);
2. soak: ``--minutes`` at 80% of that rate with realistic spans of 20 tenants, a burst at 3x capacity
   (``--burst-seconds``) at a quarter of the run, and at half time a restart: SIGTERM (the service
   drains), then ``llm-cost-tracker run`` again on the same data dir and ports;
3. audit: stop the service and count, by span id, every span the sender got OK for in the table.

The sender behaves like a collector: UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED, ABORTED, DEADLINE_EXCEEDED (and a refused connection
during the restart) are retried with exponential backoff (50 ms to 2 s) with the same payload. Span
ids are a global sequence number (request ``k`` holds ids ``k*N .. k*N+N-1``), so the audit is one
GROUP BY. Reports accepted, rejected-with-retry, lost (must be 0), duplicates, Export latency
percentiles and the service's RSS over time per process (growth after warm-up must stay within 10%:\nmedian of the last quarter over median of the first quarter after a warm-up quarter).

    python benchmarks/soak.py --minutes 30
    python benchmarks/soak.py --minutes 4 --json soak.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _workload import TENANTS, make_payloads  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llm_cost_tracker.testing import ServiceProcess  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ROWS = re.compile(r"^llm_pipeline_rows_written_total (\S+)$", re.M)
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED,
           grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED)  # the OTLP spec's retryable codes


def rows_written(svc: ServiceProcess) -> int:
    try:
        match = ROWS.search(svc.metrics())
    except OSError:
        return 0
    return int(float(match.group(1))) if match else 0


class Sender:
    """Paced Export streams that retry like a collector and record what was acknowledged.

    Args:
        endpoint: returns the current HOST:PORT.
        streams: concurrent synchronous Export loops.
        spans_per_request: spans in each request.
    """

    def __init__(self, endpoint: str, streams: int, spans_per_request: int) -> None:
        self.endpoint = endpoint
        self.streams = streams
        self.spr = spans_per_request
        self.rate = 0.0  # spans/s wanted; 0 = flat out
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_request = 1
        self.next_send = time.monotonic()
        self.acked: list[int] = []  # request numbers answered OK
        self.latencies: list[tuple[float, float]] = []  # (time, seconds) of every OK Export call
        self.retries: dict[str, int] = {}
        self.partial_rejected = 0
        self.failures: list[str] = []
        self._templates = [ExportTraceServiceRequest.FromString(p) for p in make_payloads(len(TENANTS), self.spr)]
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(streams)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(120)

    def _claim(self) -> int | None:
        """The next request number, after waiting for the pace; None when stopping."""
        with self.lock:
            k = self.next_request
            self.next_request += 1
            if self.rate > 0:
                now = time.monotonic()
                self.next_send = max(self.next_send + self.spr / self.rate, now - 1.0)
                wait = self.next_send - now
            else:
                wait = 0.0
        if wait > 0 and self.stop.wait(wait):
            return None
        return None if self.stop.is_set() else k

    def _payload(self, template: ExportTraceServiceRequest, k: int) -> bytes:
        base = k * self.spr
        i = 0
        for rs in template.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.span_id = (base + i).to_bytes(8, "big")
                    span.start_time_unix_nano = time.time_ns()
                    span.end_time_unix_nano = span.start_time_unix_nano + 800_000_000
                    i += 1
        return template.SerializeToString()

    def _loop(self, index: int) -> None:
        templates = [ExportTraceServiceRequest.FromString(t.SerializeToString()) for t in self._templates]
        channel_for = ""
        export = None
        while (k := self._claim()) is not None:
            payload = self._payload(templates[k % len(templates)], k)
            delay = 0.05
            while True:
                endpoint = self.endpoint
                if endpoint != channel_for:
                    channel = grpc.insecure_channel(endpoint)
                    export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
                    channel_for = endpoint
                started = time.monotonic()
                try:
                    raw = export(payload, timeout=30)
                except grpc.RpcError as exc:
                    code = exc.code()  # type: ignore[attr-defined]
                    if code in RETRIED:
                        with self.lock:
                            self.retries[code.name] = self.retries.get(code.name, 0) + 1
                        if self.stop.wait(delay):
                            return  # never acknowledged: not counted as accepted
                        delay = min(delay * 2, 2.0)
                        continue
                    with self.lock:
                        self.failures.append(f"request {k}: {code.name}: {exc.details()}")  # type: ignore[attr-defined]
                    break
                elapsed = time.monotonic() - started
                rejected = ExportTraceServiceResponse.FromString(raw).partial_success.rejected_spans
                with self.lock:
                    self.acked.append(k)
                    self.latencies.append((started, elapsed))
                    self.partial_rejected += rejected
                break


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_growth(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """``(growth, slope)``: after a warm-up (the first quarter of the samples), the median RSS of the last
    quarter over that of the first quarter, minus 1; and the least-squares slope in MiB per minute."""
    if len(samples) < 8:
        return float("nan"), float("nan")
    post = samples[len(samples) // 4:]
    q = max(1, len(post) // 4)
    growth = statistics.median(r for _, r in post[-q:]) / statistics.median(r for _, r in post[:q]) - 1
    slope = statistics.linear_regression([t for t, _ in post], [r for _, r in post]).slope * 60
    return growth, slope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration after the capacity probe")
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--burst-seconds", type=float, default=0, help="default: 5%% of the soak, 10-90 s")
    parser.add_argument("--load", type=float, default=0.8, help="fraction of capacity to soak at")
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--spans-per-request", type=int, default=256)
    parser.add_argument("--rss-every", type=float, default=2.0)
    parser.add_argument("--data-dir", help="keep the store here (default: a temporary directory)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--service-arg", action="append", default=[], help="extra flag for the service")
    args = parser.parse_args()

    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="lct-soak-")
    data_dir = args.data_dir or tmp.name  # type: ignore[union-attr]
    svc = ServiceProcess(data_dir, *args.service_arg).start()
    sender = Sender(svc.endpoint, args.streams, args.spans_per_request)
    rss: list[tuple[float, int, float]] = []  # (t, pid, MiB)
    events: list[tuple[float, str]] = []
    t0 = time.monotonic()
    current = {"svc": svc}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(args.rss_every):
            proc = current["svc"].proc
            try:
                rss.append((time.monotonic() - t0, proc.pid, psutil.Process(proc.pid).memory_info().rss / 2**20))
            except (psutil.Error, AttributeError):
                pass

    threading.Thread(target=sample, daemon=True).start()

    # 1. capacity
    sender.rate = 0.0
    sender.start()
    events.append((0.0, "capacity probe: flat out"))
    warm = min(8.0, args.capacity_seconds / 3)
    time.sleep(warm)
    r0, c0 = rows_written(svc), time.monotonic()
    time.sleep(args.capacity_seconds - warm)
    capacity = (rows_written(svc) - r0) / (time.monotonic() - c0)
    target = args.load * capacity
    sender.rate = target
    soak_start = time.monotonic()
    events.append((soak_start - t0, f"soak at {target:,.0f} spans/s ({args.load:.0%} of {capacity:,.0f})"))
    print(f"capacity {capacity:,.0f} spans/s; soaking at {target:,.0f} spans/s for {args.minutes} min", flush=True)

    duration = args.minutes * 60
    burst = args.burst_seconds or min(90.0, max(10.0, 0.05 * duration))
    burst_at, restart_at = soak_start + 0.25 * duration, soak_start + 0.5 * duration
    burst_done = restarted = False
    restart_info: dict[str, float] = {}
    while time.monotonic() < soak_start + duration:
        now = time.monotonic()
        if not burst_done and now >= burst_at:
            sender.rate = 3 * capacity
            events.append((now - t0, f"burst at {3 * capacity:,.0f} spans/s for {burst:.0f} s"))
            time.sleep(burst)
            sender.rate = target
            events.append((time.monotonic() - t0, "burst over"))
            burst_done = True
            continue
        if not restarted and now >= restart_at:
            events.append((now - t0, "SIGTERM"))
            stop_started = time.monotonic()
            code = current["svc"].stop()
            restart_info["drain_seconds"] = time.monotonic() - stop_started
            restart_info["exit_code"] = code
            new = ServiceProcess(data_dir, *args.service_arg)
            new.grpc_port, new.http_port = svc.grpc_port, svc.http_port
            new.log_path = str(Path(data_dir) / f"service-{new.grpc_port}-2.log")
            new.start()
            restart_info["down_seconds"] = time.monotonic() - stop_started
            current["svc"] = new
            events.append((time.monotonic() - t0, f"restarted (exit {code}, down {restart_info['down_seconds']:.1f} s)"))
            restarted = True
            continue
        time.sleep(0.2)

    sender.join()
    sampling.set()
    final = current["svc"]
    exit_code = final.stop()
    elapsed = time.monotonic() - soak_start
    audit = final.sql(
        f"SELECT intDiv(reinterpretAsUInt64(reverse(unhex(span_id))), {args.spans_per_request}) AS req, "
        "count() AS n, uniqExact(span_id) AS u FROM llm_spans GROUP BY req")
    stored = {int(r["req"]): (int(r["n"]), int(r["u"])) for r in audit}
    acked = sender.acked
    lost = sum(args.spans_per_request - stored.get(k, (0, 0))[1] for k in acked)
    duplicates = sum(n - u for n, u in stored.values())
    unacked_stored = sum(u for k, (_, u) in stored.items() if k not in set(acked))
    lat = [s for _, s in sender.latencies]
    steady = [s for t, s in sender.latencies if t - t0 > (soak_start - t0) and not (
        burst_at - 1 <= t <= burst_at + burst + 10 or restart_at - 1 <= t <= restart_at + 30)]
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, mib in rss:
        if t >= soak_start - t0:
            by_pid.setdefault(pid, []).append((t, mib))
    figures = {
        "capacity_spans_per_s": round(capacity),
        "soak_rate_spans_per_s": round(target),
        "soak_seconds": round(elapsed),
        "streams": args.streams,
        "spans_per_request": args.spans_per_request,
        "tenants": len(TENANTS),
        "accepted_requests": len(acked),
        "accepted_spans": len(acked) * args.spans_per_request,
        "rejected_with_retry": sender.retries,
        "partial_success_rejected_spans": sender.partial_rejected,
        "permanent_failures": len(sender.failures),
        "lost_spans": lost,
        "duplicate_rows": duplicates,
        "stored_not_acknowledged_spans": unacked_stored,
        "export_latency_ms": {"p50": round(percentile(lat, 0.5) * 1e3, 1),
                              "p99": round(percentile(lat, 0.99) * 1e3, 1),
                              "max": round(max(lat, default=0) * 1e3, 1),
                              "p99_steady": round(percentile(steady, 0.99) * 1e3, 1)},
        "restart": {k: round(v, 2) for k, v in restart_info.items()},
        "final_exit_code": exit_code,
        "rss_mib": {str(pid): {"min": round(min(m for _, m in s)), "max": round(max(m for _, m in s)),
                               "growth_after_warmup": round(rss_growth(s)[0], 3),
                               "slope_mib_per_min": round(rss_growth(s)[1], 2),
                               "series": [(round(t), round(m)) for t, m in s[:: max(1, len(s) // 20)]]}
                    for pid, s in by_pid.items()},
        "events": [(round(t, 1), e) for t, e in events],
        "first_failures": sender.failures[:5],
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    growth_ok = all(not (v["growth_after_warmup"] > 0.10) for v in figures["rss_mib"].values())  # type: ignore[union-attr]
    ok = lost == 0 and not sender.failures and exit_code == 0 and growth_ok
    print("RESULT:", "OK" if ok else "FAILED", f"(lost {lost}, permanent failures {len(sender.failures)}, "
          f"rss growth ok {growth_ok})")
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
