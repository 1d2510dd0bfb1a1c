"""The writer's per-span accounting, before and after: spend metrics, the budgets' pending-spend ledger and
span identity's key tuples, timed old and new interleaved in one process.

Every span the all-in-one service stores is accounted for three times in Python, all under the GIL:
the ledger aggregates its request at publish (the gRPC handler) and, before, again at commit (the
writer); the writer counts it in the spend metrics; span identity builds its key. ``old`` is the code as
it was (kept here, and as the reference in tests/sinks/test_spend_accounting.py): a ``SpendRow`` tuple
per span then a loop over the tuples, the ledger's aggregate at publish and at commit, the identity keys
by comprehension and the first-arrival loop over every key. ``new`` is the code in the tree: records
summed per group, the publish aggregate carried to commit by the in-process queue, identity keys in a C
loop and no per-key loop for a batch of new spans. Records come from the benchmark workload
(``_workload.py``) through the receiver's stages, 512 per request, batches of ``--batch``; the store is
a stub (what it costs is not this benchmark's). Figures only, no assertions.

    python benchmarks/accounting.py --rounds 7
    python benchmarks/accounting.py --rounds 7 --keys team --entity-keys user.id   # budgets scoped by attributes
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.budgets import SpendLedger, TrackingQueue  # noqa: E402
from llm_cost_tracker.budgets._ledger import BUCKET_NS, Aggregate  # noqa: E402
from llm_cost_tracker.config import Settings  # noqa: E402
from llm_cost_tracker.frontend import call_identity, decode_limits, default_transforms, load_catalog  # noqa: E402
from llm_cost_tracker.metrics import Metrics, SpendCollector  # noqa: E402
from llm_cost_tracker.queue.memory import MemoryQueue  # noqa: E402
from llm_cost_tracker.sinks.identity import FirstArrivals, Key, spend_rows, time_ranges, token_hash  # noqa: E402
from llm_cost_tracker.sources.otlp_records import decode_scan  # noqa: E402
from llm_cost_tracker.sources.otlp_scan import scan_request  # noqa: E402
from llm_cost_tracker.transforms.redact import Redact  # noqa: E402
from llm_cost_tracker.types import Batch, BatchTransform, Records, SpanRecord  # noqa: E402


class ChdbClient:
    """A store that holds nothing (named like the embedded one, so span identity takes its route)."""

    class _Result:
        result_rows: list[Any] = []

    def command(self, _sql: str) -> None:
        return None

    def insert_arrow(self, _table: str, _data: Any) -> None:
        return None

    def query(self, _sql: str, parameters: Any = None) -> Any:
        return self._Result()


def old_aggregate(ledger: SpendLedger, records: Iterable[SpanRecord]) -> Aggregate:
    """``SpendLedger.aggregate`` as it was."""
    out: Aggregate = {}
    keys, entity_keys = ledger.attribute_keys, ledger.entity_keys
    for r in records:
        cost = r.cost_pusd
        if not cost:
            continue
        attrs = tuple(r.attributes.get(k, "") for k in keys) if keys else ()
        if entity_keys:
            attrs += tuple(r.attributes.get(k) or r.resource_attributes.get(k, "") for k in entity_keys)
        key = ((r.tenant, r.service_name, r.provider, r.response_model or r.request_model, attrs),
               r.start_time_ns // BUCKET_NS)
        out[key] = out.get(key, 0) + cost
    return out


class OldTrackingQueue(TrackingQueue):
    """``TrackingQueue`` as it was: the ledger aggregates each request at publish and each batch again at commit."""

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None, columns: Any = None) -> Future[None]:
        agg = old_aggregate(self.ledger, records)
        if agg:
            self.ledger.add(agg)
        try:
            return self._inner.publish(records, wire_bytes, columns)  # type: ignore[no-any-return]
        except BaseException:
            if agg:
                self.ledger.subtract(agg)
            raise

    def commit(self, batch: Batch) -> None:
        assert isinstance(batch.records, list)
        agg = old_aggregate(self.ledger, batch.records)
        try:
            self._inner.commit(batch)
        finally:
            self.ledger.end_write(agg)


class OldFirstArrivals(FirstArrivals):
    """``FirstArrivals`` as it was: keys by comprehension, and a loop over every key even when none is stored."""

    def _stored_table(self, keys: list[Key]) -> dict[Key, int]:
        time_ranges([k[3] for k in keys])
        self._client.insert_arrow("keys", pa.table({"tenant": [k[0] for k in keys], "trace_id": [k[1] for k in keys]}))
        return {}

    def __call__(self, records: Records, token: str = "") -> tuple[Records, int]:
        assert isinstance(records, list)
        keys = [(r.tenant, r.trace_id, r.span_id, r.start_time_ns) for r in records]
        stored = self.stored(keys)
        ours = token_hash(token) or None
        seen: set[Key] = set()
        keep: list[int] = []
        for i, key in enumerate(keys):
            if key in seen or (key in stored and stored[key] != ours):
                continue
            seen.add(key)
            keep.append(i)
        if len(keep) == len(keys):
            return records, 0
        return [records[i] for i in keep], len(keys) - len(keep)


class NewFirstArrivals(FirstArrivals):
    """``FirstArrivals`` with the same stub lookup as :class:`OldFirstArrivals` (the store is not timed)."""

    def _stored_table(self, keys: list[Key]) -> dict[Key, int]:
        super()._stored_table(keys)
        return {}


def requests(count: int) -> list[tuple[list[SpanRecord], int]]:
    """``count`` requests of the workload through the receiver's stages, as the queue receives them (with the
    request's size: the receiver hands it to the queue, which estimates the records' memory from it)."""
    payloads = make_payloads(count, 512, seed=11)
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="lct-accounting-"))
    metrics = Metrics()
    catalog = load_catalog(settings.pricing, settings.store)
    catalog.current.compile_columns()
    transforms = default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics))
    limits = decode_limits(settings.decode)
    calls = call_identity(settings.calls, metrics)
    out = []
    for payload in payloads:
        scan = scan_request(payload, limits)
        assert scan is not None
        decoded = decode_scan(scan, payload, limits)
        assert decoded is not None
        records, columns = decoded.records, decoded.columns
        for transform in transforms:
            if isinstance(transform, BatchTransform):
                records = transform.process(records, columns)
            else:
                records = [transform(r) for r in records]
        out.append((calls(records), len(payload)))
    return out


def run(reqs: list[tuple[list[SpanRecord], int]], batch: int, old: bool, keys: tuple[str, ...],
        entity_keys: tuple[str, ...]) -> dict[str, float]:
    """One pass of every request through publish, take, span identity, spend metrics and commit; CPU per part."""
    ledger = SpendLedger(keys, entity_keys)
    queue = (OldTrackingQueue if old else TrackingQueue)(MemoryQueue(1 << 30), ledger)
    arrivals = (OldFirstArrivals if old else NewFirstArrivals)(ChdbClient())
    spend = SpendCollector()
    clock = time.thread_time
    spent = dict.fromkeys(("publish (ledger)", "span identity", "spend metrics", "commit (ledger)"), 0.0)
    started = clock()
    for records, wire_bytes in reqs:
        queue.publish(records, wire_bytes)
    spent["publish (ledger)"] = clock() - started
    while queue.depth:
        taken = queue.take(batch, 0.0)
        assert taken is not None
        started = clock()
        fresh, _ = arrivals(taken.records, "token")
        spent["span identity"] += clock() - started
        started = clock()
        if old:
            spend.observe_rows(spend_rows(fresh))
        else:
            assert isinstance(fresh, list)
            spend.observe_records(fresh)
        spent["spend metrics"] += clock() - started
        started = clock()
        queue.commit(taken)
        spent["commit (ledger)"] += clock() - started
    assert not ledger.snapshot(), "every published span committed"
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=80, help="Export requests of 512 spans")
    parser.add_argument("--batch", type=int, default=20_000, help="the writer's batch size")
    parser.add_argument("--rounds", type=int, default=5, help="old and new passes, alternately")
    parser.add_argument("--keys", default="", help="budget attribute keys, comma-separated (none by default)")
    parser.add_argument("--entity-keys", default="", help="budget entity keys, comma-separated")
    args = parser.parse_args()
    keys = tuple(k for k in args.keys.split(",") if k)
    entity_keys = tuple(k for k in args.entity_keys.split(",") if k)
    reqs = requests(args.requests)
    spans = sum(len(records) for records, _ in reqs)
    figures: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    gc.collect()
    for _ in range(args.rounds):
        for old in (True, False):
            figures[old].append(run(reqs, args.batch, old, keys, entity_keys))
            gc.collect()
    print(f"{spans:,} spans in requests of 512, batches of {args.batch:,}, {args.rounds} rounds; budget keys "
          f"{keys or '-'} / {entity_keys or '-'}; load {os.getloadavg()[0]:.2f}")
    print(f"  {'us CPU per span (median of rounds)':36s} {'old':>7s} {'new':>7s}")
    medians: dict[bool, float] = {}
    for part in figures[True][0]:
        row = []
        for old in (True, False):
            values = sorted(f[part] for f in figures[old])
            row.append(values[len(values) // 2] / spans * 1e6)
        print(f"  {part:36s} {row[0]:7.3f} {row[1]:7.3f}")
    for old in (True, False):
        totals = sorted(sum(f.values()) for f in figures[old])
        medians[old] = totals[len(totals) // 2] / spans * 1e6
    print(f"  {'all of it':36s} {medians[True]:7.3f} {medians[False]:7.3f}")

    def each(old: bool) -> str:
        return " ".join(f"{sum(f.values()) / spans * 1e6:.2f}" for f in figures[old])

    print(f"  per round, old: {each(True)}; new: {each(False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
