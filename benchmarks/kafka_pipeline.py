"""End-to-end rate through Kafka (receivers, one consumer, a tansu broker), against the raw produce floor.

Sends realistic GenAI spans in batches of 512 over gRPC from concurrent streams to
``llm-cost-tracker receiver`` child processes (``--receivers``, 1 by default; request i to receiver i mod N); a ``llm-cost-tracker consumer`` child process stores
them in its embedded chDB. Reports spans/s from the first Export until the consumer has committed
every span (checked against the table after shutdown), each process's CPU, and, measured in the
same run as the floor, the rate at which plain aiokafka ``send()`` (acks=all, same compression and
linger) pushes *the same messages* (read back from the topic: same keys, same bytes) into the same
broker; and the *store floor*: chDB alone inserting the same records through the consumer's sink, which
bounds what any receiver and consumer could reach on this machine. Figures only: nothing here asserts a time.

    python benchmarks/kafka_pipeline.py --spans 200000 --streams 4
    python benchmarks/kafka_pipeline.py --spans 200000 --streams 4 --receivers 2   # more processes
    python benchmarks/kafka_pipeline.py --receivers 2 --spans 300000 --baseline HEAD~1 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).parent))
from _baseline import print_ratios, source_env, trees  # noqa: E402
from _speed import SpeedProbe  # noqa: E402
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.queue.kafka_testing import KafkaProcess, TansuBroker, sql  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOPIC = "llm-cost.spans.v1"
STALL_SECONDS = 60.0
"""Waiting for the consumer ends when it has committed nothing more for this long (a lost record would
otherwise keep the benchmark waiting for ever): the run is then reported as stalled."""


Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def _records(message: Message) -> int:
    for name, value in message[2]:
        if name == "lct-batch":
            return int(value)
    return 1


async def read_back(bootstrap: str, total: int) -> list[Message]:
    """Every (key, value, headers) on the span topic holding ``total`` span records, flush markers left out."""
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 2**20)
    await consumer.start()
    out: list[Message] = []
    records = 0
    try:
        deadline = time.monotonic() + 120
        while records < total and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
                fresh = [(m.key, m.value, list(m.headers)) for m in messages if m.value]
                out.extend(fresh)
                records += sum(_records(m) for m in fresh)
    finally:
        await consumer.stop()
    return out


async def raw_produce_rate(bootstrap: str, messages: list[Message], compression: str | None, linger_ms: int,
                           partitions: int, topic: str = "raw-floor") -> float:
    """Messages/s that aiokafka send() (acks=all), pipelined, gets acknowledged into a fresh topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=compression,
                                linger_ms=linger_ms, max_batch_size=1_048_576)
    await producer.start()
    try:
        await (await producer.send(topic, b"warm-up", key=b"k"))
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key, headers=headers or None)
                   for key, value, headers in messages]
        await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def store_rate(messages: list[Message], batch_size: int) -> tuple[float, float]:
    """Spans/s (wall) and CPU µs per span of chDB alone storing the same records: the consumer's sink, batches
    of ``batch_size``, dedup tokens, ``llm_spans`` and its rollups, in a fresh store in this process."""
    from llm_cost_tracker.config import Settings
    from llm_cost_tracker.queue.kafka_codec import WireBatch
    from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
    from llm_cost_tracker.storage.client import connect
    from llm_cost_tracker.storage.migrate import migrate

    batches = [WireBatch()]
    for _, value, headers in messages:
        if len(batches[-1]) >= batch_size:
            batches.append(WireBatch())
        batches[-1].add(value, headers)
    spans = sum(len(b) for b in batches)
    with tempfile.TemporaryDirectory(prefix="lct-store-floor-") as tmp:
        client = connect(Settings(data_dir=tmp))
        migrate(client)
        sink = ClickHouseSink(client)
        me = psutil.Process()
        cpu_before, started = cpu_seconds(me), time.perf_counter()
        for i, batch in enumerate(batches):
            sink.write(batch, dedup_token=f"store-floor-{i}")
        wall, cpu = time.perf_counter() - started, cpu_seconds(me) - cpu_before
        client.close()
    return spans / wall, cpu / max(spans, 1) * 1e6


def one_per_span(messages: list[Message]) -> list[Message]:
    """The same span records as one SpanRecordV1 message each, keyed by trace id (the v1.0 layout)."""
    from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordBatchV1

    out: list[Message] = []
    for key, value, headers in messages:
        if not any(name == "lct-batch" for name, _ in headers):
            out.append((key, value, []))
            continue
        for record in SpanRecordBatchV1.FromString(value or b"").records:
            out.append((record.trace_id.encode(), record.SerializeToString(), []))
    return out


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--streams", type=int, default=4, help="concurrent Export streams")
    parser.add_argument("--receivers", type=int, default=1,
                        help="receiver processes; request i goes to receiver i mod N (more processes than the GIL's one)")
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--distinct-payloads", type=int, default=0,
                        help="payloads built and sent round-robin (default: one per request, every span distinct; "
                             "a repeated payload is a copy, which span identity leaves out)")
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--batch-age-seconds", type=float, default=None,
                        help="the consumer's batch age limit (default: the service's, 1 s)")
    parser.add_argument("--store-batch", type=int, default=10_000,
                        help="batch size of the store floor (chDB alone inserting the same records; 0 skips it)")
    parser.add_argument("--no-per-span-floor", action="store_true",
                        help="skip the second floor (the same records as one message per span, as v1.0 wrote)")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also run the receivers and the consumer at git commit REV, alternating with this "
                             "checkout's, and print the ratios (no floors then; see --rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: pairs of runs (default 3)")
    args = parser.parse_args()
    requests = args.spans // args.spans_per_request
    payloads = make_payloads(args.distinct_payloads or requests, args.spans_per_request)
    if args.baseline:
        with trees(args.baseline) as (source, this):
            return compare(args, payloads, source, this)
    r = pipeline(args, payloads, None, floors=True)
    report(r, args)
    return 0 if r["stored"] == r["total"] else 1


def compare(args: argparse.Namespace, payloads: list[bytes], baseline: Path, this: Path) -> int:
    """``--baseline``: rounds of the pipeline run by the baseline's code and by this checkout's (both copies,
    ``_baseline.trees``), their order swapped every round; each run's figures, then per round the ratio
    of the two and the medians."""
    pairs: list[dict[str, dict[str, Any]]] = []
    ok = True
    for round_ in range(args.rounds):
        pair: dict[str, dict[str, Any]] = {}
        for side in ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline"):
            r = pipeline(args, payloads, baseline if side == "baseline" else this, floors=False)
            print(f"== round {round_ + 1}, {side} ({args.baseline if side == 'baseline' else 'this checkout'})")
            report(r, args)
            ok = ok and r["stored"] == r["total"]
            pair[side] = r
        pairs.append(pair)
    print(f"== this checkout against {args.baseline}, {args.rounds} round(s)")
    print_ratios(pairs, (("end to end", "rate", "spans/s", 1.0), ("per probe loop", "per_probe", "spans", 1.0),
                         ("CPU speed probe", "probe_ms", "ms", 1.0), ("consumer CPU", "consumer_us", "us per span", 1.0),
                         ("receivers' CPU", "receivers_us", "us per span", 1.0)))
    return 0 if ok else 1


def pipeline(args: argparse.Namespace, payloads: list[bytes], source: Path | None, floors: bool) -> dict[str, Any]:
    """One run: a broker, the consumer and the receivers (the code under ``source``, a ``src`` directory, when
    given, else this checkout's), every request sent, until the consumer committed them all; with ``floors``,
    the raw produce floor and the store floor after it."""
    load_before = os.getloadavg()
    requests = args.spans // args.spans_per_request
    total = requests * args.spans_per_request
    distinct = min(len(payloads), requests) * args.spans_per_request
    compression = None if args.compression == "none" else args.compression
    env = source_env(source, None) if source is not None else None
    with tempfile.TemporaryDirectory(prefix="lct-kafka-bench-") as tmp:
        broker = TansuBroker(tmp).start()
        common = ["--kafka-bootstrap", broker.bootstrap, "--no-kafka-idempotence", "--kafka-compression",
                  args.compression, "--kafka-partitions", str(args.partitions), "--kafka-linger-ms",
                  str(args.linger_ms), "--log-level", "warning"]
        age = ["--batch-age-seconds", str(args.batch_age_seconds)] if args.batch_age_seconds else []
        consumer = KafkaProcess("consumer", Path(tmp) / "consumer", *common, "--kafka-session-timeout-ms", "3000",
                                "--kafka-heartbeat-interval-ms", "500", *age, env=env).start()
        receivers = [KafkaProcess("receiver", Path(tmp) / f"receiver-{n}", *common, env=env).start()
                     for n in range(args.receivers)]
        procs = {f"receiver {n}" if args.receivers > 1 else "receiver": psutil.Process(r.proc.pid)
                 for n, r in enumerate(receivers)}
        procs |= {"consumer": psutil.Process(consumer.proc.pid),
                  "tansu": psutil.Process(broker.proc.pid),  # type: ignore[union-attr]
                  "benchmark client (gRPC)": psutil.Process()}
        channels = [grpc.insecure_channel(r.endpoint) for r in receivers]
        exports = [c.unary_unary(METHOD, request_serializer=None, response_deserializer=None) for c in channels]
        retries = {"UNAVAILABLE": 0, "RESOURCE_EXHAUSTED": 0}
        lock = threading.Lock()

        def send(i: int) -> None:
            payload = payloads[i % len(payloads)]
            export = exports[i % len(exports)]
            while True:
                try:
                    export(payload, timeout=60)
                    return
                except grpc.RpcError as exc:
                    code = exc.code().name  # type: ignore[attr-defined]
                    if code not in retries:
                        raise
                    with lock:
                        retries[code] += 1
                    time.sleep(0.05)

        cpu_before = {name: cpu_seconds(p) for name, p in procs.items()}
        speed = SpeedProbe().start()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.streams) as pool:
            list(pool.map(send, range(requests)))
        acked_at = time.perf_counter() - started
        consumer_cpu_at_ack = cpu_seconds(procs["consumer"]) - cpu_before["consumer"]
        behind = total - consumer.metric("llm_kafka_committed_records_total")
        committed, progress_at = total - behind, time.monotonic()
        while committed < total and time.monotonic() - progress_at < STALL_SECONDS:
            time.sleep(0.1)  # each poll asks the consumer for one family (``name[]``), not a whole /metrics answer
            now_committed = consumer.metric("llm_kafka_committed_records_total")
            if now_committed > committed:
                committed, progress_at = now_committed, time.monotonic()
        elapsed = time.perf_counter() - started
        probe_ms = speed.stop()
        cpu = {name: cpu_seconds(p) - cpu_before[name] for name, p in procs.items()}
        for channel in channels:
            channel.close()
        batches = consumer.metric("llm_kafka_batches_committed_total")
        markers = consumer.metric("llm_kafka_flush_markers_total")
        gaps = {outcome: consumer.metric("llm_kafka_offset_gaps_total", outcome=outcome)
                for outcome in ("reread", "skipped")}
        for receiver in receivers:
            assert receiver.stop() == 0, receiver.log()
        assert consumer.stop() == 0, consumer.log()
        stored = sql(consumer.data_dir, "SELECT count() AS n FROM llm_spans")[0]["n"]

        messages = asyncio.run(read_back(broker.bootstrap, total))
        topic_bytes = sum(len(v or b"") + len(k or b"") for k, v, _ in messages)
        topic_records = sum(_records(m) for m in messages)
        floor_msgs = asyncio.run(raw_produce_rate(broker.bootstrap, messages, compression, args.linger_ms,
                                                  args.partitions)) if floors else 0.0
        floor = floor_msgs * topic_records / max(len(messages), 1)  # spans/s carried by those messages
        per_span = 0.0
        if floors and not args.no_per_span_floor:
            per_span = asyncio.run(raw_produce_rate(broker.bootstrap, one_per_span(messages), compression,
                                                    args.linger_ms, args.partitions, topic="raw-floor-per-span"))
        broker.stop()
    store, store_cpu = store_rate(messages, args.store_batch) if floors and args.store_batch else (0.0, 0.0)

    rate = total / elapsed
    receivers_cpu = sum(seconds for name, seconds in cpu.items() if name.startswith("receiver"))
    return {"load_before": load_before, "total": total, "requests": requests, "distinct": distinct, "stored": stored,
            "acked_at": acked_at, "retries": retries, "rate": rate, "elapsed": elapsed, "batches": batches,
            "markers": markers, "gaps": gaps, "committed": committed, "behind": behind, "consumer_cpu_at_ack": consumer_cpu_at_ack, "cpu": cpu,
            "messages": len(messages), "topic_bytes": topic_bytes, "topic_records": topic_records,
            "floor_msgs": floor_msgs, "floor": floor, "per_span": per_span, "store": store, "store_cpu": store_cpu,
            "probe_ms": probe_ms, "probes": len(speed.samples), "per_probe": rate * probe_ms / 1e3,
            "consumer_us": cpu["consumer"] / total * 1e6, "receivers_us": receivers_cpu / total * 1e6}


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    """Print one run's figures."""
    total, elapsed, rate, floor = r["total"], r["elapsed"], r["rate"], r["floor"]
    messages, topic_records, topic_bytes = r["messages"], r["topic_records"], r["topic_bytes"]
    print(f"load average                 {r['load_before'][0]:.2f} before, {os.getloadavg()[0]:.2f} after (1 min; "
          f"{psutil.cpu_count()} cores)")
    print(f"spans sent                   {total:,} ({r['requests']} requests of {args.spans_per_request}, "
          f"{args.streams} streams to {args.receivers} receiver(s), {args.partitions} partitions, {args.compression})")
    print(f"rows in table after stop     {r['stored']:,}  ({'OK' if r['stored'] == r['distinct'] else 'MISMATCH'}; "
          f"{r['distinct']:,} distinct spans, {total - r['distinct']:,} copies left out)")
    print(f"all Exports acked after      {r['acked_at']:.2f} s  ({total / r['acked_at']:,.0f} spans/s into Kafka; "
          f"retries {r['retries']})")
    if r["committed"] < total:
        print(f"STALLED                      the consumer committed {r['committed']:,.0f} of {total:,} records and "
              f"nothing more for {STALL_SECONDS:.0f} s: the rate below is not a result")
    print(f"end to end                   {rate:,.0f} spans/s  ({elapsed:.2f} s until all committed; "
          f"{r['batches']:.0f} batches, {r['markers']:.0f} flush markers; offset gaps read again "
          f"{r['gaps']['reread']:.0f}, passed {r['gaps']['skipped']:.0f})")
    print(f"CPU speed probe              {r['probe_ms']:.2f} ms per fixed loop (median of {r['probes']}, in this "
          f"process; lower is faster, _speed.py): {r['per_probe']:,.1f} spans per probe loop")
    print(f"consumer at the last ack     {r['behind']:,.0f} spans behind; CPU until then "
          f"{r['consumer_cpu_at_ack'] / max(total - r['behind'], 1) * 1e6:.1f} us per committed span")
    for name, seconds in r["cpu"].items():
        print(f"CPU {name:<25}{seconds / elapsed:.2f} cores  ({seconds / total * 1e6:.1f} us per span)")
    print(f"messages on the topic        {messages:,} holding {topic_records:,} spans  "
          f"({topic_bytes / max(messages, 1):,.0f} B avg, {topic_bytes / max(topic_records, 1):.0f} B per span)")
    if floor:
        print(f"raw aiokafka send() floor    {r['floor_msgs']:,.0f} msg/s = {floor:,.0f} spans/s (same messages and "
              "headers, acks=all, same run)")
        print(f"ratio end-to-end / raw       {rate / floor:.3f}  (target >= 0.5; absolute target 15,000 spans/s)")
    per_span, store, store_cpu = r["per_span"], r["store"], r["store_cpu"]
    if per_span:
        print(f"per-span floor (v1.0 layout) {per_span:,.0f} spans/s (same records, one message each, keyed by "
              f"trace id); ratio {rate / per_span:.3f}")
    if store:
        cores = psutil.cpu_count() or 1
        print(f"store floor (chDB alone)     {store:,.0f} spans/s, {store_cpu:.1f} us CPU per span (same records, the "
              f"consumer's sink, batches of {args.store_batch:,}); {cores} cores at that CPU cost store at most "
              f"{cores / store_cpu * 1e6:,.0f} spans/s with nothing else running, against half the raw floor "
              f"{floor / 2:,.0f}")


if __name__ == "__main__":
    sys.exit(main())
