"""Where the store's CPU goes: chDB inserting the writer's rows into ``llm_spans``, part by part, and merging them.

Builds the benchmark workload's rows as the writer does (``_workload.py`` -> wire scan -> the default
stages -> ``storage.rows.records_to_arrow`` -> the ``insert_token`` column), then inserts the same Arrow
batches, interleaved, into variants of ``llm_spans`` in one embedded store, each variant adding one part
of the schema to the one before it:

    parse          a ``Null`` table with the same column types (the Arrow file read and converted)
    defaults       + the DEFAULT expressions (``model``, ``conversation_id``)
    part write     a MergeTree (same sort key, partitions, TTL and settings; ClickHouse's LZ4)
    codecs         + the schema's codecs (Delta, T64, ZSTD(1))
    idx_trace_id, idx_conversation_id      + each bloom-filter index
    hourly view, daily view                + each rollup view (= llm_spans as migrated)

A part's cost is the difference between its variant and the one before. Every insert carries the sink's
settings (``INSERT_SETTINGS``, ``DEDUP_SETTINGS`` and a token: without one, ClickHouse would hash every
row to deduplicate). Merges are stopped while inserting; then each table's parts are merged in one
``OPTIMIZE ... FINAL`` (one merge level; background merges use the same vertical algorithm, and a running
store merges a row once per level). ``fixed`` is a one-row insert: what each insert costs whatever its size.

Then the whole schema's insert at other batch sizes against the writer's (``batch_size``, 10,000): the
fixed cost spreads over more rows; ``--levels`` also runs a store that merges in the background, paced
like a busy service, then merges what is left into one part, and reads the merges' CPU (bigger parts
reach the same part in fewer merge levels).

CPU is ``time.process_time`` (every thread of the process: chDB's insert and merge threads count), per
span, the minimum over batches and rounds (the machine is shared: the least disturbed run), after two
untimed inserts (chDB's allocator grows on the first inserts of a process: ~10,000 page faults and 2-4x
the CPU, once). Figures only, no assertions.

    python benchmarks/store.py                  # 5 batches of 10,240 spans, 3 rounds (~1 min)
    python benchmarks/store.py --levels         # + background merges by batch size (~1 min more)
    python benchmarks/store.py --floor          # only the store floor for benchmarks/ingest.py's run
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import pyarrow as pa  # noqa: E402
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.config import Settings  # noqa: E402
from llm_cost_tracker.frontend import decode_limits, default_transforms, load_catalog  # noqa: E402
from llm_cost_tracker.metrics import Metrics  # noqa: E402
from llm_cost_tracker.sinks.clickhouse import INSERT_SETTINGS  # noqa: E402
from llm_cost_tracker.sinks.identity import token_hash  # noqa: E402
from llm_cost_tracker.sources.otlp_records import decode_scan  # noqa: E402
from llm_cost_tracker.sources.otlp_scan import scan_request  # noqa: E402
from llm_cost_tracker.storage import client as store  # noqa: E402
from llm_cost_tracker.storage.client import DEDUP_SETTINGS  # noqa: E402
from llm_cost_tracker.storage.migrate import migrate  # noqa: E402
from llm_cost_tracker.storage.rows import records_to_arrow  # noqa: E402
from llm_cost_tracker.transforms.chain import Chain  # noqa: E402
from llm_cost_tracker.transforms.redact import Redact  # noqa: E402


def _ignore(reason: str, message: str) -> None:
    """A rejected span's reason: the workload's spans are all kept."""


def build_batches(requests: int, batch: int, settings: Settings) -> list[pa.Table]:
    """The writer's Arrow tables for ``requests`` Export requests of 512 spans, ``batch`` spans per insert."""
    metrics = Metrics()
    catalog = load_catalog(settings.pricing, settings.store)
    catalog.current.compile_columns()
    chain = Chain(default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics)))
    limits = decode_limits(settings.decode)
    out: list[pa.Table] = []
    pending: list[Any] = []
    pending_columns: list[Any] = []
    payloads = make_payloads(requests, 512, seed=11)
    for i, payload in enumerate(payloads):
        scan = scan_request(payload, limits)
        assert scan is not None
        decoded = decode_scan(scan, payload, limits)
        assert decoded is not None
        records = chain.process(decoded.records, _ignore, columns=decoded.columns).records
        pending.extend(records)
        pending_columns.append(decoded.columns)
        if len(pending) >= batch or i == len(payloads) - 1:
            table = records_to_arrow(pending, pending_columns)  # stamped as the sink stamps a batch with a token
            stamp = pa.scalar(token_hash(f"bench-{len(out)}"), pa.uint64())
            out.append(table.append_column("insert_token", pa.repeat(stamp, table.num_rows)))
            pending, pending_columns = [], []
    return out


_CODEC = re.compile(r"\s+CODEC\((?:[^()]|\([^()]*\))*\)")
_DEFAULT = re.compile(r"\s+DEFAULT\s.*?(?=\s+CODEC\(|$)")


class Schema:
    """``llm_spans`` and its rollup views as created in ``database``, taken apart to build variants from."""

    def __init__(self, client: Any, database: str) -> None:
        self.client, self.database = client, database
        ddl = client.command(f"SHOW CREATE TABLE {database}.llm_spans").replace("\\n", "\n").replace("\\'", "'")
        rest = ddl.split("(\n", 1)[1]
        body, self.tail = rest.rsplit("\n)\n", 1)
        items = [line.strip().rstrip(",") for line in body.splitlines() if line.strip()]
        self.columns = [item for item in items if not item.startswith("INDEX ")]
        self.indexes = {item.split()[1]: item for item in items if item.startswith("INDEX ")}
        self.views = {kind: client.command(f"SHOW CREATE TABLE {database}.llm_spend_{kind}_mv")
                      .replace("\\n", "\n").replace("\\'", "'") for kind in ("hourly", "daily")}

    def create(self, name: str, *, null: bool = False, codecs: bool = True, defaults: bool = True,
               indexes: tuple[str, ...] = ("idx_trace_id", "idx_conversation_id"),
               views: tuple[str, ...] = ("hourly", "daily"), settings: str = "") -> list[str]:
        """Create variant ``name`` of llm_spans (and its views' targets); returns its tables, merges stopped."""
        columns = [_CODEC.sub("", c) if not codecs else c for c in self.columns]
        columns = [_DEFAULT.sub("", c) if not defaults else c for c in columns]
        items = columns + [self.indexes[i] for i in indexes if not null]
        tail = "ENGINE = Null" if null else self.tail + (f", {settings}" if settings else "")
        table = f"{self.database}.{name}"
        self.drop(name)
        self.client.command(f"CREATE TABLE {table}\n(\n" + ",\n".join(items) + f"\n)\n{tail}")
        tables = [table]
        for kind in views:
            target = f"{table}_{kind}"
            self.client.command(f"CREATE TABLE {target} AS {self.database}.llm_spend_{kind}")
            view = (self.views[kind].replace(f"{self.database}.llm_spend_{kind}_mv", f"{target}_mv")
                    .replace(f"TO {self.database}.llm_spend_{kind}", f"TO {target}")
                    .replace(f"FROM {self.database}.llm_spans", f"FROM {table}"))
            self.client.command(view)
            tables.append(target)
        for t in tables:
            if not null or t != table:
                self.client.command(f"SYSTEM STOP MERGES {t}")
        return tables

    def drop(self, name: str) -> None:
        for suffix in ("_hourly_mv", "_daily_mv", "_hourly", "_daily", ""):
            self.client.command(f"DROP TABLE IF EXISTS {self.database}.{name}{suffix} SYNC")


PARTS: list[tuple[str, dict[str, Any]]] = [
    ("parse", {"null": True, "codecs": False, "defaults": False, "views": ()}),
    ("defaults", {"null": True, "codecs": False, "views": ()}),
    ("part write", {"codecs": False, "indexes": (), "views": ()}),
    ("codecs", {"indexes": (), "views": ()}),
    ("idx_trace_id", {"indexes": ("idx_trace_id",), "views": ()}),
    ("idx_conversation_id", {"views": ()}),
    ("hourly view", {"views": ("hourly",)}),
    ("daily view", {}),
]
"""Each variant adds its part to the one before; the last is llm_spans as migrated."""


class Inserter:
    """Inserts with the sink's settings and a fresh token each time, timing each insert's process CPU."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.count = 0

    def __call__(self, table: str, rows: pa.Table) -> float:
        self.count += 1
        settings = INSERT_SETTINGS | DEDUP_SETTINGS | {"insert_deduplication_token": f"bench-insert-{self.count}"}
        started = time.process_time()
        self.client.insert_arrow(table, rows, settings=settings)
        return time.process_time() - started


def merge(client: Any, tables: list[str]) -> list[float]:
    """Each table's parts merged into one (``OPTIMIZE ... FINAL``), the process CPU of each."""
    spent = []
    for table in tables:
        started = time.process_time()  # before the start: a background merge may pick the parts up at once
        client.command(f"SYSTEM START MERGES {table}")
        client.command(f"OPTIMIZE TABLE {table} FINAL")
        spent.append(time.process_time() - started)
    return spent


def measure_parts(schema: Schema, insert: Inserter, batches: list[pa.Table], rounds: int) -> dict[str, dict[str, float]]:
    """Per variant: insert (us/span, min over batches and rounds), fixed (ms per insert), merge, views' merges."""
    inserts: dict[str, list[float]] = collections.defaultdict(list)
    fixed: dict[str, list[float]] = collections.defaultdict(list)
    merges: dict[str, list[float]] = collections.defaultdict(list)
    view_merges: dict[str, list[float]] = collections.defaultdict(list)
    names = [name for name, _ in PARTS]
    spans = sum(b.num_rows for b in batches)
    for _ in range(rounds):
        tables = {name: schema.create(f"bench_{i}", **spec) for i, (name, spec) in enumerate(PARTS)}
        for b, rows in enumerate(batches):
            for name in names[b % len(names):] + names[:b % len(names)]:  # a different one goes first each time
                inserts[name].append(insert(tables[name][0], rows) / rows.num_rows)
        for _ in range(5):  # before any merge starts (process time would count a merge running beside)
            for name in names:
                fixed[name].append(insert(tables[name][0], batches[0].slice(0, 1)))
        for name in names:
            if not dict(PARTS)[name].get("null"):
                spent = merge(schema.client, tables[name])
                merges[name].append(spent[0] / spans)
                view_merges[name].append(sum(spent[1:]) / (spans + 1))
        for i in range(len(PARTS)):
            schema.drop(f"bench_{i}")
    return {name: {"insert": min(inserts[name]) * 1e6, "fixed": min(fixed[name]) * 1e3,
                   "merge": min(merges[name]) * 1e6 if merges[name] else 0.0,
                   "view merges": min(view_merges[name]) * 1e6 if view_merges[name] else 0.0} for name in names}


def measure_sizes(schema: Schema, insert: Inserter, rows: pa.Table, sizes: list[int], rounds: int) -> dict[int, float]:
    """Per batch size: the whole schema's insert (us/span, min of two inserts a round: as many samples for every
    size, since a minimum falls with the number of samples)."""
    out: dict[int, list[float]] = collections.defaultdict(list)
    for r in range(rounds):
        for size in sizes if r % 2 == 0 else sizes[::-1]:
            tables = schema.create("bench_size")
            out[size] += [insert(tables[0], rows.slice(at, size)) / size for at in (0, size)]
            schema.drop("bench_size")
    return {size: min(got) * 1e6 for size, got in out.items()}


def _thread_cpu() -> dict[str, tuple[str, float]]:
    """CPU seconds of each thread of this process, by thread id: (name, seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                raw = handle.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        out[tid] = (raw[raw.index("(") + 1:raw.rindex(")")], (int(fields[11]) + int(fields[12])) / tick)
    return out


def wait_for_merges(client: Any, prefix: str) -> None:
    """Until 3 s pass without a merge of the tables named ``prefix``... running."""
    calm = 0
    while calm < 6:
        time.sleep(0.5)
        running = client.query("SELECT count() FROM system.merges WHERE database = currentDatabase() "
                               "AND startsWith(table, {prefix:String})", parameters={"prefix": prefix}).result_rows[0][0]
        calm = 0 if running else calm + 1


def measure_levels(schema: Schema, insert: Inserter, rows: pa.Table, sizes: list[int], rate: float) -> dict[int, tuple[float, float, int]]:
    """Per batch size: a store merging in the background while batches arrive at ``rate`` spans/s until its merges
    stop, then its parts merged into one (every size ends the same): (process CPU per span, merges' CPU per span
    (the merge threads' and the last merge's), parts the background merges left)."""
    out = {}
    for size in sizes:
        tables = schema.create("bench_levels")
        for table in tables:
            schema.client.command(f"SYSTEM START MERGES {table}")
        before, started, clock = _thread_cpu(), time.process_time(), time.perf_counter()
        for at in range(0, rows.num_rows, size):
            time.sleep(max(0.0, clock + at / rate - time.perf_counter()))
            insert(tables[0], rows.slice(at, size))
        wait_for_merges(schema.client, "bench_levels")
        after = _thread_cpu()
        merging = sum(cpu - before.get(tid, (name, 0.0))[1] for tid, (name, cpu) in after.items()
                      if name.startswith("MergeMutate"))
        parts = schema.client.query("SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                                    "AND table = 'bench_levels'").result_rows[0][0]
        last = sum(merge(schema.client, tables[:1]))  # the same end for every size: one part of all the rows
        spent = time.process_time() - started
        out[size] = (spent / rows.num_rows * 1e6, (merging + last) / rows.num_rows * 1e6, int(parts))
        schema.drop("bench_levels")
    return out


def measure_floor(schema: Schema, insert: Inserter, rows: pa.Table, size: int) -> dict[str, float]:
    """The store floor end to end (issue 19 compares the service with it): ``rows`` inserted back to back into
    ``llm_spans`` as migrated (its rollup views included), ``size`` spans per insert, merges running in the
    background as in the service. Spans/s until the last insert returned, the process CPU per span then, and
    the CPU per span once the merges those inserts started have stopped (what the store spends on them in all)."""
    tables = schema.create("bench_floor")
    for table in tables:
        schema.client.command(f"SYSTEM START MERGES {table}")
    started, clock = time.process_time(), time.perf_counter()
    for at in range(0, rows.num_rows, size):
        insert(tables[0], rows.slice(at, size))
    wall, inserted = time.perf_counter() - clock, time.process_time() - started
    wait_for_merges(schema.client, "bench_floor")
    settled = time.process_time() - started
    schema.drop("bench_floor")
    n = rows.num_rows
    return {"rate": n / wall, "inserted": inserted / n * 1e6, "settled": settled / n * 1e6,
            "cores": inserted / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=10_240, help="spans per insert for the parts (the writer's ~10,000)")
    parser.add_argument("--batches", type=int, default=5, help="inserts per variant and round (then merged as one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="10240,20480,40960", help="batch sizes compared, the first is the baseline")
    parser.add_argument("--levels", action="store_true", help="also background merges by batch size (paced)")
    parser.add_argument("--levels-spans", type=int, default=204_800)
    parser.add_argument("--rate", type=float, default=30_000, help="spans/s the --levels inserts arrive at")
    parser.add_argument("--floor", action="store_true",
                        help="only the store floor end to end: --floor-spans back to back at the writer's batch size")
    parser.add_argument("--floor-spans", type=int, default=299_520, help="benchmarks/ingest.py's default run")
    parser.add_argument("--floor-batch", type=int, default=0, help="spans per insert (0: the service's batch_size)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lct-store-") as data_dir:  # stores are big: gone at the end
        return run(args, Settings(data_dir=data_dir))


def run_floor(args: argparse.Namespace, settings: Settings) -> int:
    """``--floor``: the store alone taking the service's rows at the service's batch size, as fast as it can."""
    size = args.floor_batch or settings.batch_size
    rows = pa.concat_tables(build_batches(-(-args.floor_spans // 512), size, settings)).slice(0, args.floor_spans)
    client = store.connect(settings)
    migrate(client, settings=settings)
    schema = Schema(client, settings.clickhouse_database)
    insert = Inserter(client)
    warm = schema.create("bench_warm")  # chDB's allocator grows on a process's first inserts: not per span
    for at in (0, size):
        insert(warm[0], rows.slice(at, size))
    schema.drop("bench_warm")
    load = os.getloadavg()[0]
    got = measure_floor(schema, insert, rows, size)
    print(f"store floor: {rows.num_rows:,} spans into llm_spans as migrated, {size:,} per insert, back to back, "
          f"merges in the background; load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"  {got['rate']:,.0f} spans/s until the last insert returned, at {got['cores']:.2f} cores "
          f"({got['inserted']:.1f} us CPU per span)")
    print(f"  {got['settled']:.1f} us CPU per span once its merges stopped (inserts and merges: the store's whole "
          f"cost, which the service pays too)")
    client.close()
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.floor:
        return run_floor(args, settings)
    sizes = [int(s) for s in args.sizes.split(",")]
    spans = max(args.batch * args.batches, max(sizes) * 2, args.levels_spans if args.levels else 0)
    batches = build_batches(-(-spans // 512), args.batch, settings)
    rows = pa.concat_tables(batches)
    batches = batches[:args.batches]
    client = store.connect(settings)
    migrate(client, settings=settings)
    schema = Schema(client, settings.clickhouse_database)
    insert = Inserter(client)
    warm = schema.create("bench_warm")  # chDB's allocator grows on a process's first inserts: not per span
    for rows_ in batches[:2]:
        insert(warm[0], rows_)
    schema.drop("bench_warm")
    load = os.getloadavg()
    parts = measure_parts(schema, insert, batches, args.rounds)
    print(f"llm_spans part by part: {len(batches)} inserts of {args.batch:,} spans, then one merge; min of "
          f"{args.rounds} rounds; load {load[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"  {'part':22s} {'insert us/span':>15s} {'fixed ms/insert':>16s} {'merge us/span':>14s}")
    previous = {"insert": 0.0, "fixed": 0.0, "merge": 0.0}
    for name, _ in PARTS:
        got = parts[name]
        print(f"  {name:22s} {got['insert'] - previous['insert']:+15.2f} {got['fixed'] - previous['fixed']:+16.1f} "
              f"{got['merge'] - previous['merge']:+14.2f}")
        previous = got
    whole = parts[PARTS[-1][0]]
    print(f"  {'llm_spans (all parts)':22s} {whole['insert']:15.2f} {whole['fixed']:16.1f} {whole['merge']:14.2f}"
          f"   + the rollups' own merges {whole['view merges']:.2f} us/span")
    print("  (a part is its variant minus the one before: within the noise a part can read negative)")
    by_size = measure_sizes(schema, insert, rows, sizes, args.rounds)
    base = by_size[sizes[0]]
    print(f"whole schema by batch size (baseline {sizes[0]:,}); load {os.getloadavg()[0]:.1f}")
    for size in sizes:
        print(f"  {size:7,} spans per insert: insert {by_size[size]:5.2f} us/span ({by_size[size] / base:.2f}x)")
    if args.levels:
        levels = measure_levels(schema, insert, rows.slice(0, args.levels_spans), sizes, args.rate)
        base_levels = levels[sizes[0]]
        print(f"background merges, {args.levels_spans:,} spans at {args.rate:,.0f} spans/s until the merges stop, "
              f"then one merge of what they left (the same single part for every size); load {os.getloadavg()[0]:.1f}")
        for size in sizes:
            total, merging, left = levels[size]
            print(f"  {size:7,} spans per insert: store {total:5.2f} us/span ({total / base_levels[0]:.2f}x), of it "
                  f"merges {merging:5.2f} ({merging / base_levels[1]:.2f}x); the background left {left} parts")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
