"""Latency of ``GET /v1/check`` at a fixed request rate against a running service (issue 21: p99 < 5 ms).

    .venv/bin/python benchmarks/budget_check.py                   # 1,000 requests/s for 10 s, 1,000 users
    .venv/bin/python benchmarks/budget_check.py --rate 500 --seconds 5

``llm-cost-tracker run`` in a child process with a per-user budget (``each = "user.id"``) and
``refresh_seconds = 5`` (the background monitor keeps the snapshot fresh); ``--users`` users spend
first. Then ``--clients`` processes, each on one keep-alive connection, send checks for random users on
a fixed schedule (open loop: rate / clients each). Two latencies per request: from send to the
complete answer (service), and from the request's scheduled time (includes waiting behind a slow
earlier request of the same client: coordinated omission avoided). Figures only, with the load
average (the machine is shared); the clients run on the same cores as the service.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span  # noqa: E402

CONFIG = """
[budget_options]
refresh_seconds = 5

[[budgets]]
name = "per-user"
limit_usd = 0.001
period = "day"
downgrade = { "gpt-4o" = ["gpt-4o-mini"] }
[budgets.scope]
each = "user.id"
"""


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def client(port: int, rate: float, seconds: float, users: int, seed: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    service, scheduled, errors = [], [], 0
    interval = 1.0 / rate
    start = time.perf_counter() + 0.2
    n = 0
    while True:
        due = start + n * interval
        if due - start >= seconds:
            break
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        sent = time.perf_counter()
        conn.request("GET", f"/v1/check?user.id=user-{rng.randrange(users)}&model=gpt-4o")
        response = conn.getresponse()
        body = response.read()
        done = time.perf_counter()
        if response.status != 200 or b'"allow"' not in body:
            errors += 1
        service.append(done - sent)
        scheduled.append(done - due)
        n += 1
    out.put((service, scheduled, errors))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second in all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "lct.toml"
        config.write_text(CONFIG)
        svc = ServiceProcess(Path(tmp) / "store", "--config", str(config)).start()
        try:
            stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
            spans = [make_span({**genai_attributes("gpt-4o", input_tokens=100 + 7 * i), "user.id": f"user-{i}"})
                     for i in range(args.users)]
            for i in range(0, len(spans), 500):
                stub.Export(make_request(spans[i:i + 500]), timeout=60)
            time.sleep(7)  # stored, and the snapshot refreshed by the monitor
            print(f"service ready, {args.users} users spent; load before: {_load()}")
            out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            procs = [mp.Process(target=client, args=(svc.http_port, args.rate / args.clients, args.seconds,
                                                     args.users, i, out)) for i in range(args.clients)]
            for p in procs:
                p.start()
            results = [out.get() for _ in procs]
            for p in procs:
                p.join()
            load = _load()
        finally:
            svc.stop()
    service = [v for r in results for v in r[0]]
    scheduled = [v for r in results for v in r[1]]
    errors = sum(r[2] for r in results)
    achieved = len(service) / args.seconds
    print(f"GET /v1/check: {len(service)} requests in {args.seconds:g} s ({achieved:,.0f}/s of {args.rate:,.0f}/s "
          f"asked), {errors} errors, {args.clients} client processes")
    print(f"  service latency   p50 {pct(service, 0.5):.2f} ms  p99 {pct(service, 0.99):.2f} ms  "
          f"max {max(service) * 1000:.1f} ms  mean {statistics.fmean(service) * 1000:.2f} ms")
    print(f"  from schedule     p50 {pct(scheduled, 0.5):.2f} ms  p99 {pct(scheduled, 0.99):.2f} ms")
    print(f"  load average (1, 5, 15 min) after: {load}")


if __name__ == "__main__":
    main()
