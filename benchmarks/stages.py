"""Where the ingest path's CPU goes: each stage's CPU per span, in one process, against the store floor.

Runs the all-in-one service's hot path without the network (scan -> decode -> detect -> usage -> quirks ->
scrub -> price -> redact -> call identity -> span identity -> Arrow -> insert into an embedded chDB
store) over the benchmark workload (``_workload.py``: 512 spans per request, batches of 10,000 like
the writer's), timing each Python stage with ``time.thread_time`` and each call into the store with
``time.process_time`` (all threads of the process: chDB's insert threads count too), and the garbage
collector's pauses by generation. chDB's merges are stopped until the end, then timed as one merge of
the inserted parts (in the background they would be charged to whichever stage they ran beside). The
``insert`` line is the store floor: ClickHouse alone inserting the same rows. Figures only, no assertions.

    python benchmarks/stages.py --requests 60            # with the service's GC settings (runtime.tune_gc)
    python benchmarks/stages.py --requests 60 --default-gc
    python benchmarks/stages.py --requests 60 --per-span   # Price one span at a time (the per-span engine)
    python benchmarks/stages.py --requests 60 --protobuf   # decode through protobuf objects (the reference)
    python benchmarks/stages.py --requests 60 --chain      # per-record stages through the receivers' Chain
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _speed import probe_once  # noqa: E402
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.config import Settings  # noqa: E402
from llm_cost_tracker.frontend import call_identity, decode_limits, default_transforms, load_catalog  # noqa: E402
from llm_cost_tracker.metrics import Metrics  # noqa: E402
from llm_cost_tracker.runtime import tune_gc  # noqa: E402
from llm_cost_tracker.sinks.clickhouse import INSERT_SETTINGS  # noqa: E402
from llm_cost_tracker.sinks.identity import FirstArrivals, spend_rows, token_hash  # noqa: E402
from llm_cost_tracker.sources.columnar import ColumnarPath  # noqa: E402
from llm_cost_tracker.sources.otlp_decode import DecodeLimits, check_request, decode_spans, parse_request  # noqa: E402
from llm_cost_tracker.sources.otlp_records import decode_scan  # noqa: E402
from llm_cost_tracker.sources.otlp_scan import scan_request  # noqa: E402
from llm_cost_tracker.storage import client as store  # noqa: E402
from llm_cost_tracker.storage.client import DEDUP_SETTINGS  # noqa: E402
from llm_cost_tracker.storage.migrate import migrate  # noqa: E402
from llm_cost_tracker.storage.rows import records_to_arrow  # noqa: E402
from llm_cost_tracker.transforms.calls import CallIdentity  # noqa: E402
from llm_cost_tracker.transforms.chain import Chain  # noqa: E402
from llm_cost_tracker.transforms.redact import Redact  # noqa: E402
from llm_cost_tracker.transforms.usage import ExtractUsage  # noqa: E402
from llm_cost_tracker.types import AttributeColumns, BatchTransform, Drop, SpanRecord  # noqa: E402

STORE = ("insert", "span identity")
"""Stages whose CPU is mostly ClickHouse's (the rest is the service's Python)."""


def fill_call_window(calls: CallIdentity, entries: int, limits: DecodeLimits) -> None:
    """Call identity as a running service holds it: a full window (at 300 s and 100,000 entries, full from
    ~330 spans per second on). Every dict in it is then large, so each span's lookups and its eviction miss
    the caches: 4-5 us per span, against under 1 us with the empty window this benchmark used to time."""
    usage = ExtractUsage()
    for payload in make_payloads(-(-entries // 512), 512, seed=12):
        scan = scan_request(payload, limits)
        assert scan is not None
        decoded = decode_scan(scan, payload, limits)
        assert decoded is not None
        calls([usage(record) for record in decoded.records])


def warm_store(client: Any, limits: DecodeLimits, spans: int) -> None:
    """chDB's allocator grows on a process's first inserts (~10,000 page faults and 2-4x the CPU of a later
    insert, benchmarks/store.py): once per process, not per span, so two untimed inserts of a batch's size
    into a scratch copy of llm_spans go first."""
    records = []
    for payload in make_payloads(-(-spans // 512), 512, seed=13):
        scan = scan_request(payload, limits)
        assert scan is not None
        decoded = decode_scan(scan, payload, limits)
        assert decoded is not None
        records.extend(decoded.records)
    client.command("CREATE TABLE _lct_warm AS llm_spans")
    for _ in range(2):
        client.insert_arrow("_lct_warm", records_to_arrow(records))
    client.command("DROP TABLE _lct_warm SYNC")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="Export requests (of --spans-per-request spans)")
    parser.add_argument("--spans-per-request", type=int, default=512,
                        help="spans per Export request (small ones show each stage's fixed cost per request)")
    parser.add_argument("--batch", type=int, default=10_000, help="spans per insert (the writer's batch size)")
    parser.add_argument("--default-gc", action="store_true", help="CPython's default GC thresholds")
    parser.add_argument("--protobuf", action="store_true",
                        help="decode through protobuf's Python objects (the reference decoder) instead of the wire scan")
    parser.add_argument("--empty-call-window", action="store_true",
                        help="start call identity with an empty window (a service holds a full one from a few "
                             "hundred spans per second on)")
    parser.add_argument("--per-span", action="store_true",
                        help="run batch stages (Price) span by span, as before the columnar path")
    parser.add_argument("--chain", action="store_true",
                        help="run each run of per-record stages (detect, usage) through transforms.chain.Chain, as "
                             "the receivers do (where they settle records from the attribute columns), timed as one "
                             "line; without it they run record by record here")
    args = parser.parse_args()
    payloads = make_payloads(args.requests, args.spans_per_request, seed=11)
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-stages-"))
    metrics = Metrics()
    catalog = load_catalog(settings.pricing, settings.store)
    catalog.current.compile_columns()  # once per catalog in a running service (on its first request), not per span
    transforms = default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics))
    chains: list[tuple[str, Chain]] = []  # --chain: one Chain per run of per-record stages, one per batch stage
    for transform in transforms if args.chain else ():
        if isinstance(transform, BatchTransform) or not chains or isinstance(chains[-1][1].transforms[-1],
                                                                               BatchTransform):
            chains.append((type(transform).__name__, Chain([transform])))
        else:
            name, chain = chains[-1]
            chains[-1] = (f"{name}+{type(transform).__name__}", Chain([*chain.transforms, transform]))
    limits = decode_limits(settings.decode)
    scan_request(payloads[0], limits)  # numba loads (or compiles) the scan once per process, not per span
    calls = call_identity(settings.calls, metrics)
    if not args.empty_call_window:
        fill_call_window(calls, settings.calls.call_window_entries, limits)
    # the columnar path over the same requests, each right after the stages (its own stages and window)
    lane_calls = call_identity(settings.calls, metrics)
    if not args.empty_call_window:
        fill_call_window(lane_calls, settings.calls.call_window_entries, limits)
    lane = None if args.protobuf else ColumnarPath.build(
        default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics)), lane_calls, limits)
    lane_seconds, lane_spans, lane_declined = 0.0, 0, 0
    client = store.connect(settings)
    migrate(client, settings=settings)
    first_arrivals = FirstArrivals(client)
    # once per process, not per span: the first lookup creates the scratch table, and pyarrow's first
    # table built from Python lists initialises itself (~0.3 s, which read as 4-5 us per span here)
    first_arrivals.stored([("", "0" * 32, "0" * 16, 0)])
    warm_store(client, limits, args.batch)
    client.command("SYSTEM STOP MERGES")
    probes = [probe_once() for _ in range(9)]  # how fast the machine runs now (_speed.py), and again at the end
    spent: collections.Counter[str] = collections.Counter()
    paused = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            paused[0] = time.thread_time()
        else:
            spent[f"gc (generation {info['generation']})"] += time.thread_time() - paused[0]

    def timed(name: str, fn: Callable[..., Any], *a: Any) -> Any:
        clock = time.process_time if name in STORE else time.thread_time
        started = clock()
        out = fn(*a)
        spent[name] += clock() - started
        return out

    if not args.default_gc:
        tune_gc()
    gc.callbacks.append(on_gc)
    spans = 0
    pending: list[SpanRecord] = []
    pending_columns: list[AttributeColumns] = []  # what the in-process queue hands the writer (Batch.columns)
    for i, payload in enumerate(payloads):
        columns = None
        if args.protobuf:
            request = timed("parse", parse_request, payload)
            timed("check", check_request, request, limits)
            records = timed("decode", decode_spans, request, limits, True).records
        else:  # what the receiver runs: the wire scan, then records from its tables
            scan = timed("scan", scan_request, payload, limits)  # counts and checks the request limits first
            assert scan is not None, "the benchmark's requests are well-formed"
            decoded = timed("decode", decode_scan, scan, payload, limits)
            assert decoded is not None, "the benchmark's values are within the limits"
            records, columns = decoded.records, decoded.columns
        spans += len(records)
        for transform in transforms if not args.chain else ():
            started = time.thread_time()
            if isinstance(transform, BatchTransform) and not args.per_span:
                records = transform.process(records, columns)
            else:
                kept = []
                for r in records:
                    try:
                        kept.append(transform(r))
                    except Drop:
                        pass
                records = kept
            spent[type(transform).__name__] += time.thread_time() - started
        for name, chain in chains:
            started = time.thread_time()
            records = chain.process(records, lambda reason, message: None, None, columns).records
            spent[name] += time.thread_time() - started
        pending.extend(timed("call identity", calls, records))
        if lane is not None:  # (not in ``spent``: it is the other way to do what the lines above do)
            started = time.thread_time()
            lane_scan = scan_request(payload, limits)
            prepared = lane.prepare(lane_scan, payload, None) if lane_scan is not None else None
            done = lane.finish(prepared) if prepared is not None else None
            lane_seconds += time.thread_time() - started
            lane_spans += len(done.table) if done is not None else 0
            lane_declined += done is None
        if columns is not None:
            pending_columns.append(columns)
        if len(pending) < args.batch and i < len(payloads) - 1:
            continue
        batch, batch_columns = pending, pending_columns
        pending, pending_columns = [], []
        fresh, _ = timed("span identity", first_arrivals, batch, f"bench-{i}")
        table = timed("arrow", records_to_arrow, fresh, batch_columns)
        timed("spend metrics rows", spend_rows, fresh)
        token = f"bench-{i}"  # the writer inserts with its batch's token (without one ClickHouse hashes every row)
        table = table.append_column("insert_token", pa.repeat(pa.scalar(token_hash(token), pa.uint64()), len(table)))
        timed("insert", client.insert_arrow, "llm_spans", table, None,  # (database, settings)
              INSERT_SETTINGS | DEDUP_SETTINGS | {"insert_deduplication_token": token})
    gc.callbacks.remove(on_gc)
    # The merges the inserts owe, at the end (stopped until then: process time counts every thread, so a
    # background merge would be charged to whichever stage it ran beside): one merge of all the parts,
    # which a running store does in steps, a row once per level.
    client.command("SYSTEM START MERGES")
    started = time.process_time()
    client.command("OPTIMIZE TABLE llm_spans FINAL")
    merged = time.process_time() - started
    probes += [probe_once() for _ in range(9)]
    total = sum(spent.values())
    python = total - sum(spent[name] for name in STORE)
    load = os.getloadavg()[0]
    print(f"{spans:,} spans, {args.requests} requests of {args.spans_per_request}, inserts of {args.batch:,}; load {load:.1f}; "
          f"GC {'default' if args.default_gc else 'tuned (runtime.tune_gc)'}; call window "
          f"{'empty at the start' if args.empty_call_window else f'full ({calls.size:,} carriers)'}")
    for name, seconds in spent.most_common():
        print(f"  {name:22s} {seconds / spans * 1e6:7.2f} us CPU per span  {seconds / total * 100:5.1f}%")
    print(f"  {'all stages':22s} {total / spans * 1e6:7.2f} us CPU per span")
    print(f"  {'service Python':22s} {python / spans * 1e6:7.2f} us CPU per span (all but insert and span identity)")
    floor = spent["insert"] / spans
    if lane is not None:
        receiving = python - spent["spend metrics rows"]
        print(f"  columnar path          {lane_seconds / max(lane_spans, 1) * 1e6:7.2f} us CPU per span from the bytes to the "
              f"Arrow table ({lane_declined} of {len(payloads)} requests declined), against {receiving / spans * 1e6:.2f} "
              f"for the same steps on records (scan, decode, stages, call identity, Arrow table): "
              f"{lane_seconds / max(lane_spans, 1) / (receiving / spans):.2f}x")
    print(f"  store floor (insert alone) {floor * 1e6:.2f} us per span = {1 / floor:,.0f} spans/s per core; "
          f"all stages / floor = {total / spans / floor:.1f}x")
    print(f"  one merge of the inserted parts {merged / spans * 1e6:.2f} us per span (chDB's background work, not "
          f"counted above; the running service pays it once per merge level, ingest.py --threads shows it)")
    print(f"  CPU speed probe {statistics.median(probes) * 1e3:.2f} ms per fixed loop (median of {len(probes)} before "
          "and after; lower is faster, _speed.py): the machine's speed, to set this run against another")
    return 0


if __name__ == "__main__":
    sys.exit(main())
