"""End-to-end ingest rate of the all-in-one service, against the protobuf decode floor.

Sends realistic GenAI spans in batches of 512 (as a collector does) from concurrent streams to a
``llm-cost-tracker run`` child process, and reports spans/s from the first send until every span is
written to the table (the service's rows-written counter, checked against the table after shutdown),
the service's CPU and peak RSS, and the same payloads' protobuf decode rate measured in this process
as the floor. Figures only: nothing here asserts a time.

``--modes`` runs the same payloads through several ways in, one fresh service each, back to back, so
their figures compare within one run: ``grpc`` (OTLP/gRPC), ``http`` (OTLP/HTTP protobuf), ``json``
(OTLP/HTTP JSON) and ``grpc+forward`` (OTLP/gRPC with ``--forward-otlp`` to a next hop in this
process that counts what it receives: the run ends when every span is written and forwarded).

    python benchmarks/ingest.py --spans 300000 --streams 4
    python benchmarks/ingest.py --spans 100000 --modes grpc,http,json,grpc+forward
    python benchmarks/ingest.py --spans 200000 --threads    # + the service's CPU per span by thread
    python benchmarks/ingest.py --receive-only              # the receiving side alone: nothing is stored
    python benchmarks/ingest.py --gc                        # + what the garbage collector cost, and its pauses
    python benchmarks/ingest.py --baseline HEAD~1 --rounds 3  # against another commit, runs alternating

The clock starts after ``--warmup-spans`` (20,480 by default) are sent and written: a running service
has loaded its compiled scan and its catalog's price columns long before, and those one-time costs
would otherwise read as per-span cost in a short run. ``--warmup-spans 0`` measures a cold start.

``--receive-only`` measures the receiving side on its own (gRPC, decoding, the stages, call identity, the
queue): the service child loads ``_service_child/receive_only.py``, whose writer commits every batch
without building or inserting anything. Its rate, set against a normal run's, tells whether the writer
or the receiving side bounds the service.

Each run also reports how fast the machine's CPU ran meanwhile (``_speed.py``: a fixed loop timed ten times
a second in this process; the same loop's time has doubled from one second to the next here) and the rate
times that time, "spans per probe loop": the rate with the machine's speed taken out, to set runs against
each other.

``--baseline REV`` answers "is this change faster?" on a machine whose speed drifts from one run to the
next (figures here moved by a fifth within an hour): it extracts commit REV's ``src`` (``git archive``),
copies this checkout's ``src`` beside it (both sides then import from a copy and fill their own numba cache
first: ``_baseline.py``), and runs the service from each in turns, swapping the order every round, then
prints each round's ratio and the ratio of the medians. Only runs interleaved like this compare, and even
they scatter: the same code on both sides read 1.263 and 1.064 in two rounds before the copy, and code
with no change on this path 1.037 / 0.934 / 0.983 / 1.014 in four rounds with it, and an A/A of 32-span
requests 1.221 / 1.018 / 1.105 (the CPU per span 0.872x) in three. A change smaller than ~10% needs many
rounds, or an in-process harness (``stages.py``) that times it alone.

Every request carries spans of its own by default: a payload sent twice is a copy, which the service
leaves out (span identity, docs/schema.md), so repeating payloads would measure the duplicate path.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

sys.path.insert(0, str(Path(__file__).parent))
from _baseline import print_ratios, source_env, trees  # noqa: E402
from _gc import gc_window  # noqa: E402
from _gil import GilSampler  # noqa: E402
from _speed import SpeedProbe  # noqa: E402
from _threads import ThreadClock, service_env  # noqa: E402
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.sources.otlp_decode import parse_request  # noqa: E402
from llm_cost_tracker.testing import ServiceProcess, otlp_json  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ROWS = re.compile(r"^llm_pipeline_rows_written_total (\S+)$", re.M)
REPEATS = re.compile(r"^llm_pipeline_spans_deduplicated_total (\S+)$", re.M)
MODES = ("grpc", "http", "json", "grpc+forward")


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
    text = svc.metrics(names=("llm_pipeline_rows_written_total", "llm_pipeline_spans_deduplicated_total"))
    rows, repeats = ROWS.search(text), REPEATS.search(text)
    return (int(float(rows.group(1))) if rows else 0), (int(float(repeats.group(1))) if repeats else 0)


class NextHop:
    """An OTLP/gRPC server in this process counting the spans forwarded to it (the ``grpc+forward`` mode)."""

    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def _export(self, request: ExportTraceServiceRequest, _context: Any) -> ExportTraceServiceResponse:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            self.spans += n
        return ExportTraceServiceResponse()

    def stop(self) -> None:
        self._server.stop(0)


def grpc_sender(svc: ServiceProcess) -> tuple[Callable[[bytes], bool], Callable[[], None]]:
    """send(payload) -> False when the service asked for a retry (UNAVAILABLE), and a close function."""
    channel = grpc.insecure_channel(svc.endpoint)
    export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)

    def send(payload: bytes) -> bool:
        try:
            export(payload, timeout=60)
            return True
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                raise
            return False

    return send, channel.close


def http_sender(svc: ServiceProcess, content_type: str) -> tuple[Callable[[bytes], bool], Callable[[], None]]:
    """The same over OTLP/HTTP: one kept-alive connection per sending thread."""
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []

    def send(payload: bytes) -> bool:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", svc.otlp_http_port, timeout=60)
            connections.append(connection)
        connection.request("POST", "/v1/traces", body=payload, headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        if response.status in (429, 503):
            return False
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return True

    def close() -> None:
        for connection in connections:
            connection.close()

    return send, close


def run(mode: str, payloads: list[bytes], json_payloads: list[bytes], args: argparse.Namespace,
        warmup: list[bytes], source: Path | None = None) -> dict[str, Any]:
    """One fresh service, ``warmup`` sent and written first (untimed), then every request through ``mode``;
    the service runs the package under ``source`` (a ``src`` directory) when given, else this checkout's."""
    requests = args.spans // args.spans_per_request
    total = requests * args.spans_per_request
    warm_total = len(warmup) * args.spans_per_request
    hop = NextHop() if mode == "grpc+forward" else None
    extra = ["--forward-otlp", f"grpc://127.0.0.1:{hop.port}"] if hop is not None else []
    with tempfile.TemporaryDirectory(prefix="lct-ingest-") as tmp:
        thread_log = Path(tmp) / "threads.log"
        gc_log = Path(tmp) / "gc.log"
        env = (service_env(thread_log if args.threads else None, args.receive_only, gc_log if args.gc else None)
               if args.threads or args.receive_only or args.gc else None)
        if source is not None:
            env = source_env(source, env)
        svc = ServiceProcess(tmp, *extra, *args.service_arg, env=env).start()
        proc = psutil.Process(svc.proc.pid)
        clock = ThreadClock(svc.proc.pid, thread_log) if args.threads else None
        gil = GilSampler(svc.proc.pid, Path(tmp) / "gil.txt", keep=args.gil_raw) if args.gil else None
        peak_rss = peak_private = peak_file = 0
        stop_sampling = threading.Event()

        def sample() -> None:
            nonlocal peak_rss, peak_private, peak_file
            while not stop_sampling.is_set():
                memory = proc.memory_info()
                shared = getattr(memory, "shared", 0)  # Linux: file-backed and shared pages (RssFile + RssShmem)
                if memory.rss > peak_rss:
                    peak_rss, peak_file = memory.rss, shared
                peak_private = max(peak_private, memory.rss - shared)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if mode == "http":
            send, close = http_sender(svc, "application/x-protobuf")
        elif mode == "json":
            send, close = http_sender(svc, "application/json")
        else:
            send, close = grpc_sender(svc)
        bodies = json_payloads if mode == "json" else payloads
        warm_bodies = [otlp_json(parse_request(p)) for p in warmup] if mode == "json" else warmup
        retries = 0
        lock = threading.Lock()

        def send_one(i: int, sent: list[bytes] = bodies) -> None:
            nonlocal retries
            while not send(sent[i % len(sent)]):
                with lock:
                    retries += 1
                time.sleep(0.05)

        def wait_until_written(n: int) -> None:  # the service's counters (and the hop's) include the warm-up
            while sum(rows_written(svc)) < n or (hop is not None and hop.spans < n):
                time.sleep(0.1)  # two families asked for (``name[]``): 0.6 ms of the service's CPU, a whole answer 7.6

        # Warm-up, untimed: what a service does once (loading the compiled scan, the catalog's price
        # columns on the first request, lazy imports) would otherwise be counted as per-span cost.
        with ThreadPoolExecutor(args.streams) as pool:
            list(pool.map(lambda i: send_one(i, warm_bodies), range(len(warm_bodies))))
        wait_until_written(warm_total)
        retries = 0
        cpu_before = proc.cpu_times()
        client_before, machine_before = psutil.Process().cpu_times(), psutil.cpu_times()
        if clock is not None:
            clock.mark()
        if gil is not None:
            gil.start()
        speed = SpeedProbe().start()
        window_start = time.time()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.streams) as pool:
            list(pool.map(send_one, range(requests)))
        accepted_at = time.perf_counter() - started
        wait_until_written(warm_total + total)
        elapsed = time.perf_counter() - started
        collections = gc_window(gc_log, window_start, time.time()) if args.gc else None
        probe_ms = speed.stop()
        cpu_after = proc.cpu_times()
        client_after, machine_after = psutil.Process().cpu_times(), psutil.cpu_times()
        gil_parts = gil.stop() if gil is not None else None
        threads = None
        if clock is not None:
            clock.mark()
            clock.stop()
            threads = clock.by_role()  # reads the thread log, which the data directory holds
        stop_sampling.set()
        sampler.join()
        close()
        written, repeats = rows_written(svc)
        assert svc.stop() == 0, svc.log()
        stored = 0 if args.receive_only else svc.sql("SELECT count() AS n FROM llm_spans")[0]["n"]
    if hop is not None:
        hop.stop()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    client = (client_after.user + client_after.system) - (client_before.user + client_before.system)
    idle = (machine_after.idle - machine_before.idle) + (getattr(machine_after, "iowait", 0.0)
                                                        - getattr(machine_before, "iowait", 0.0))
    return {"client_cores": client / elapsed, "client_us": client / total * 1e6,
            "machine_busy": psutil.cpu_count() - idle / elapsed,"mode": mode, "total": total, "requests": requests, "stored": stored - warm_total,
            "written": written - warm_total, "repeats": repeats,
            "forwarded": hop.spans - warm_total if hop is not None else None, "accepted_at": accepted_at,
            "retries": retries, "elapsed": elapsed, "rate": total / elapsed, "cores": cpu / elapsed,
            "us_per_span": cpu / total * 1e6, "peak_rss": peak_rss, "peak_private": peak_private, "peak_file": peak_file,
            "body_bytes": sum(map(len, bodies[:requests])),
            "threads": threads, "gil": gil_parts, "gil_seconds": gil.seconds if gil is not None else 0.0,
            "gil_rate": gil.rate if gil is not None else 0, "gc": collections,
            "gc_us": sum(collections.cpu) / total * 1e6 if collections is not None else 0.0, "probe_ms": probe_ms, "probes": len(speed.samples),
            "per_probe": total / elapsed * probe_ms / 1e3}


def report(r: dict[str, Any], args: argparse.Namespace, warm: int, distinct: int, floor: float, good: bool,
           title: str) -> None:
    """Print one run's figures."""
    print(f"== {title}")
    print(f"spans sent                 {r['total']:,} ({r['requests']} requests of {args.spans_per_request}, "
          f"{args.streams} streams, {r['body_bytes'] / r['requests'] / 1024:,.0f} KiB each), "
          f"after {warm:,} untimed warm-up spans")
    if args.receive_only:
        print(f"rows committed (not stored) {r['written']:,}  ({'OK' if good else 'MISMATCH'}; "
              f"{distinct:,} distinct spans; --receive-only)")
    else:
        print(f"rows in table after stop   {r['stored']:,}  ({'OK' if good else 'MISMATCH'}; "
              f"{distinct:,} distinct spans, {r['repeats']:,} copies left out"
              + (f"; {r['forwarded']:,} forwarded)" if r["forwarded"] is not None else ")"))
    print(f"all accepted after         {r['accepted_at']:.2f} s  (retries asked for: {r['retries']})")
    print(f"end to end                 {r['rate']:,.0f} spans/s  ({r['elapsed']:.2f} s until all written"
          + (" and forwarded)" if r["forwarded"] is not None else ")"))
    print(f"service CPU                {r['cores']:.2f} cores  ({r['us_per_span']:.1f} us CPU per span)")
    for role, seconds in (r["threads"].most_common() if r["threads"] else ()):
        if seconds >= 0.005 * r["cores"] * r["elapsed"]:  # what holds at least 0.5% of the service's CPU
            print(f"  {seconds / r['total'] * 1e6:5.1f} us per span  {role}")
    if r["gil"] is not None:
        held = sum(r["gil"].values()) / r["gil_rate"]
        print(f"GIL held                   {held / r['gil_seconds']:.0%} of the window  "
              f"({held / r['total'] * 1e6:.1f} us per span; py-spy --gil at {r['gil_rate']} Hz)")
        for part, samples in r["gil"].most_common():
            print(f"  {samples / r['gil_rate'] / r['total'] * 1e6:5.1f} us per span  {part}")
    if r["gc"] is not None:
        print(f"garbage collector          {r['gc'].line(r['total'])}")
    print(f"benchmark client CPU       {r['client_cores']:.2f} cores  ({r['client_us']:.1f} us CPU per span, sending the "
          "prepared requests)")
    print(f"machine busy               {r['machine_busy']:.2f} of {psutil.cpu_count()} cores  (the service, this "
          "client and anything else running)")
    print(f"service peak RSS           {r['peak_rss'] / 2**20:,.0f} MiB  (of it {r['peak_file'] / 2**20:,.0f} MiB "
          "file-backed: the libraries' code, which the kernel may drop and read again; the private memory's "
          f"own peak {r['peak_private'] / 2**20:,.0f} MiB)")
    print(f"ratio end-to-end / floor   {r['rate'] / floor:.3f}")
    print(f"CPU speed probe            {r['probe_ms']:.2f} ms per fixed loop (median of {r['probes']}, in this "
          f"process; lower is faster, see _speed.py): {r['per_probe']:,.1f} spans per probe loop, the rate with "
          "the machine's speed taken out")


def verified(r: dict[str, Any], args: argparse.Namespace, distinct: int) -> bool:
    """Whether every span was written once (and forwarded, in that mode)."""
    stored = distinct if args.receive_only else r["stored"]  # nothing is stored, by design
    return bool(stored == distinct == r["written"] and r["forwarded"] in (None, r["total"]))


def compare(mode: str, payloads: list[bytes], json_payloads: list[bytes], args: argparse.Namespace,
            warmup: list[bytes], baseline: Path, this: Path, distinct: int, floor: float) -> int:
    """``--baseline``: rounds of two fresh services on the same requests, the baseline's code and this
    checkout's (a copy of it, as the baseline is: ``_baseline.trees``), their order swapped every round
    (so that a machine that drifts slower or faster during the rounds weighs on both alike); each run's
    figures, then per round the ratio of the two and the medians."""
    warm = len(warmup) * args.spans_per_request
    pairs: list[dict[str, dict[str, Any]]] = []
    ok = True
    for round_ in range(args.rounds):
        pair: dict[str, dict[str, Any]] = {}
        for side in ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline"):
            load = os.getloadavg()[0]
            r = run(mode, payloads, json_payloads, args, warmup, baseline if side == "baseline" else this)
            good = verified(r, args, distinct)
            ok = ok and good
            report(r, args, warm, distinct, floor, good,
                   f"{mode}, round {round_ + 1}, {side} ({args.baseline if side == 'baseline' else 'this checkout'}), "
                   f"load {load:.2f}")
            pair[side] = r
        pairs.append(pair)
    print(f"== this checkout against {args.baseline}, {args.rounds} round(s), {mode}")
    print_ratios(pairs, (("end to end", "rate", "spans/s", 1.0), ("per probe loop", "per_probe", "spans", 1.0),
                         ("CPU speed probe", "probe_ms", "ms", 1.0), ("service CPU", "us_per_span", "us per span", 1.0),
                         ("peak RSS", "peak_rss", "MiB", 2**-20))
                 + ((("garbage collector", "gc_us", "us per span", 1.0),) if args.gc else ()))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--streams", type=int, default=4, help="concurrent Export streams")
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--distinct-payloads", type=int, default=0,
                        help="payloads built and sent round-robin (default: one per request, every span distinct)")
    parser.add_argument("--modes", default="grpc", help=f"comma-separated, run in turn: {', '.join(MODES)}")
    parser.add_argument("--warmup-spans", type=int, default=20_480,
                        help="spans sent and written before the clock starts (0: measure from a cold start)")
    parser.add_argument("--service-arg", action="append", default=[], help="extra flag for the service")
    parser.add_argument("--gil", action="store_true",
                        help="also sample who holds the service's GIL in the timed window (py-spy, the bench extra)")
    parser.add_argument("--gil-raw", type=Path, default=None,
                        help="with --gil: also keep py-spy's folded stacks in this file (for a view by function)")
    parser.add_argument("--receive-only", action="store_true",
                        help="the receiving side alone: batches are committed without being stored")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the service at git commit REV, alternating with this checkout's, and print "
                             "the ratios (the first --modes mode only; see --rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: pairs of runs (default 3)")
    parser.add_argument("--gc", action="store_true",
                        help="also print what the service's garbage collections cost in the timed window")
    parser.add_argument("--threads", action="store_true",
                        help="also print the service's CPU per span by thread (Linux: /proc/<pid>/task)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    if args.gil and GilSampler.binary() is None:
        parser.error("--gil needs py-spy (`make bench` installs it)")

    requests = args.spans // args.spans_per_request
    payloads = make_payloads(args.distinct_payloads or requests, args.spans_per_request)
    json_payloads = [otlp_json(parse_request(p)) for p in payloads] if "json" in modes else []
    warmup = make_payloads(args.warmup_spans // args.spans_per_request, args.spans_per_request, seed=8)
    distinct = min(len(payloads), requests) * args.spans_per_request
    floor = decode_rate(payloads, args.spans_per_request)
    ok = True
    results = []
    warm = len(warmup) * args.spans_per_request
    if args.baseline:
        with trees(args.baseline) as (source, this):
            return compare(modes[0], payloads, json_payloads, args, warmup, source, this, distinct, floor)
    for mode in modes:
        r = run(mode, payloads, json_payloads, args, warmup)
        results.append(r)
        good = verified(r, args, distinct)
        ok = ok and good
        report(r, args, warm, distinct, floor, good, mode)
    print(f"protobuf decode floor      {floor:,.0f} spans/s (same payloads, this process)")
    print(f"interpreter                {platform.python_implementation()} {platform.python_version()} "
          f"({sys.executable}; the service's too): its build matters, docs/performance.md")
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            print(f"{r['mode']} vs {base['mode']}: {r['rate'] / base['rate']:.2f}x the rate, "
                  f"{r['us_per_span'] - base['us_per_span']:+.1f} us CPU per span")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
