"""Ingest with and without a query loop on the SQL endpoint, and endpoint vs in-process query latency.

    .venv/bin/python benchmarks/sql_endpoint.py                      # 15 s phases, 2 query clients
    .venv/bin/python benchmarks/sql_endpoint.py --seconds 10 --query-clients 1

1. ``llm-cost-tracker run`` in a child process; a sender process pushes 512-span Export requests on 4
   streams. Ingest rate = rows the service wrote (``llm_pipeline_rows_written_total``) per second, in three
   phases: alone, with ``--query-clients`` processes running a heavy raw-table query in a loop through
   the endpoint (clickhouse-connect), alone again. Kept = with-queries / mean of the two alone phases.
2. The service stopped, the same store is opened by the service in this process; the same query is
   timed through the endpoint (clickhouse-connect over HTTP) and in-process (clickhouse-connect's chDB
   interface on the same engine): medians of ``--repeats`` runs each.

Figures only (the machine is shared and noisy; the load average is printed with them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.testing import ServiceProcess, free_port  # noqa: E402

QUERY = ("SELECT model, count() AS calls, sum(cost_usd) AS spend, quantile(0.99)(duration_ns) AS p99, "
         "uniq(trace_id) AS traces FROM llm_spans GROUP BY model ORDER BY spend DESC")
LIGHT = "SELECT model, sum(requests) AS calls, sum(cost_usd) AS spend FROM llm_spend_daily GROUP BY model"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _load() -> str:
    return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()


def sender(target: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import grpc

    payloads = make_payloads(16, 512)
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT)
    sent = [0]
    deadline = time.monotonic() + seconds

    def stream(i: int) -> None:
        n = i
        while time.monotonic() < deadline:
            try:
                export(payloads[n % len(payloads)], timeout=30)
                sent[0] += 512
            except grpc.RpcError:
                time.sleep(0.05)  # RESOURCE_EXHAUSTED / UNAVAILABLE: back off like a collector
            n += 4

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sent[0])


def querier(port: int, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import clickhouse_connect

    client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    done = 0
    while not stop.is_set():
        client.query(QUERY)
        done += 1
    out.put(done)


def rows_written(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^llm_pipeline_rows_written_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def phase(svc: ServiceProcess, seconds: float, query_clients: int) -> tuple[float, int]:
    """Rows written per second during ``seconds`` of sending, and queries answered meanwhile."""
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    sent: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    stop = mp.Event()
    queriers = [mp.Process(target=querier, args=(svc.sql_port, stop, results)) for _ in range(query_clients)]
    for q in queriers:
        q.start()
    time.sleep(1.0 if queriers else 0)  # clients connected and looping before the window opens
    before, started = rows_written(svc.http_url), time.monotonic()
    send = mp.Process(target=sender, args=(svc.endpoint, seconds, sent))
    send.start()
    send.join()
    elapsed = time.monotonic() - started
    after = rows_written(svc.http_url)
    stop.set()
    for q in queriers:
        q.join()
    sent.get()
    answered = sum(results.get() for _ in queriers)
    return (after - before) / elapsed, answered


def latency(store: Path, repeats: int) -> tuple[dict[str, tuple[float, float]], int]:
    """Median seconds of each query through the endpoint and in-process, the service running in this process."""
    import clickhouse_connect

    from llm_cost_tracker import config
    from llm_cost_tracker.pipeline import AllInOne

    port = free_port()
    settings = config.load({"data_dir": str(store), "otlp_grpc": f"127.0.0.1:{free_port()}", "otlp_http": "off",
                            "http": f"127.0.0.1:{free_port()}", "sql_http": f"127.0.0.1:{port}"})
    service = AllInOne(settings)
    service.start()
    try:
        http = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        local = clickhouse_connect.get_client(interface="chdb", path=str(store))
        rows = local.command("SELECT count() FROM llm_spans")
        medians = {}
        for label, query in (("raw-table query", QUERY), ("rollup query", LIGHT)):
            timings: dict[str, list[float]] = {"http": [], "local": []}
            for _ in range(repeats):
                for name, client in (("http", http), ("local", local)):
                    t = time.perf_counter()
                    client.query(query)
                    timings[name].append(time.perf_counter() - t)
            medians[label] = (statistics.median(timings["http"]), statistics.median(timings["local"]))
        local.close()
    finally:
        service.stop()
    return medians, int(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--query-clients", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lct-sql-bench-") as tmp:
        store = Path(tmp) / "store"
        svc = ServiceProcess(store, "--queue-capacity", "400000").start()
        try:
            print(f"load before: {_load()}  cpus: {os.cpu_count()}")
            alone1, _ = phase(svc, args.seconds, 0)
            loaded, queries = phase(svc, args.seconds, args.query_clients)
            alone2, _ = phase(svc, args.seconds, 0)
        finally:
            svc.stop()
        alone = (alone1 + alone2) / 2
        print(f"ingest alone: {alone1:,.0f} and {alone2:,.0f} rows/s; with {args.query_clients} query clients: "
              f"{loaded:,.0f} rows/s ({queries} queries, {queries / args.seconds:.1f}/s) -> kept {loaded / alone:.0%}")
        medians, rows = latency(store, args.repeats)
        for label, (http, local) in medians.items():
            print(f"{label} over {rows:,} spans, median of {args.repeats}: endpoint {http * 1000:.1f} ms, "
                  f"in-process chDB {local * 1000:.1f} ms (+{(http - local) * 1000:.1f} ms)")
        print(f"load after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
