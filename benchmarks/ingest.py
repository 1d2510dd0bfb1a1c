"""End-to-end ingest rate of the all-in-one service, against the protobuf decode floor.

Sends realistic GenAI spans in batches of 512 (as a collector does) over gRPC from concurrent
streams to a ``llm-cost-tracker run`` child process, and reports spans/s from the first send until
every span is written to the table (the service's rows-written counter, checked against the table
after shutdown), the service's peak RSS, and the same payloads' protobuf decode rate measured in
this process as the floor. Figures only: nothing here asserts a time.

    python benchmarks/ingest.py --spans 300000 --streams 4

Every request carries spans of its own by default: a payload sent twice is a copy, which the service
leaves out (span identity, docs/schema.md), so repeating payloads would measure the duplicate path.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.sources.otlp_decode import parse_request  # noqa: E402
from llm_cost_tracker.testing import ServiceProcess  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ROWS = re.compile(r"^llm_pipeline_rows_written_total (\S+)$", re.M)
REPEATS = re.compile(r"^llm_pipeline_spans_deduplicated_total (\S+)$", re.M)


def decode_rate(payloads: list[bytes], spans_per_request: int, seconds: float = 3.0) -> float:
    """Spans/s that protobuf alone parses from these payloads (the floor no receiver can beat)."""
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for p in payloads:
            parse_request(p)
        done += len(payloads) * spans_per_request
    return done / (time.perf_counter() - started)


def rows_written(svc: ServiceProcess) -> tuple[int, int]:
    """(rows written, spans left out as copies) from the service's /metrics."""
    text = svc.metrics()
    rows, repeats = ROWS.search(text), REPEATS.search(text)
    return (int(float(rows.group(1))) if rows else 0), (int(float(repeats.group(1))) if repeats else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--streams", type=int, default=4, help="concurrent Export streams")
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--distinct-payloads", type=int, default=0,
                        help="payloads built and sent round-robin (default: one per request, every span distinct)")
    parser.add_argument("--service-arg", action="append", default=[], help="extra flag for the service")
    args = parser.parse_args()

    requests = args.spans // args.spans_per_request
    total = requests * args.spans_per_request
    payloads = make_payloads(args.distinct_payloads or requests, args.spans_per_request)
    distinct = min(len(payloads), requests) * args.spans_per_request
    floor = decode_rate(payloads, args.spans_per_request)

    with tempfile.TemporaryDirectory(prefix="lct-ingest-") as tmp:
        svc = ServiceProcess(tmp, *args.service_arg).start()
        proc = psutil.Process(svc.proc.pid)
        peak_rss = 0
        stop_sampling = threading.Event()

        def sample() -> None:
            nonlocal peak_rss
            while not stop_sampling.is_set():
                peak_rss = max(peak_rss, proc.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        channel = grpc.insecure_channel(svc.endpoint)
        export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        retries = 0
        lock = threading.Lock()

        def send(i: int) -> None:
            nonlocal retries
            payload = payloads[i % len(payloads)]
            while True:
                try:
                    export(payload, timeout=60)
                    return
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                        raise
                    with lock:
                        retries += 1
                    time.sleep(0.05)

        cpu_before = proc.cpu_times()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.streams) as pool:
            list(pool.map(send, range(requests)))
        accepted_at = time.perf_counter() - started
        while sum(rows_written(svc)) < total:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu_after = proc.cpu_times()
        stop_sampling.set()
        sampler.join()
        channel.close()
        written, repeats = rows_written(svc)
        assert svc.stop() == 0, svc.log()
        stored = svc.sql("SELECT count() AS n FROM llm_spans")[0]["n"]

    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    rate = total / elapsed
    print(f"spans sent                 {total:,} ({requests} requests of {args.spans_per_request}, "
          f"{args.streams} streams)")
    print(f"rows in table after stop   {stored:,}  ({'OK' if stored == distinct == written else 'MISMATCH'}; "
          f"{distinct:,} distinct spans, {repeats:,} copies left out)")
    print(f"all accepted after         {accepted_at:.2f} s  (UNAVAILABLE retries: {retries})")
    print(f"end to end                 {rate:,.0f} spans/s  ({elapsed:.2f} s until all written)")
    print(f"service CPU                {cpu / elapsed:.2f} cores  ({cpu / total * 1e6:.1f} us CPU per span)")
    print(f"service peak RSS           {peak_rss / 2**20:,.0f} MiB")
    print(f"protobuf decode floor      {floor:,.0f} spans/s (same payloads, this process)")
    print(f"ratio end-to-end / floor   {rate / floor:.3f}")
    return 0 if stored == distinct == written else 1


if __name__ == "__main__":
    sys.exit(main())
