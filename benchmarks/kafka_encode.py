"""The Kafka receiver's encode CPU per span: each request's records to its messages, with and without its attribute columns.

Builds what ``KafkaPublisher.publish`` gets on the receiver: the benchmark workload (``_workload.py``, 512
spans per request) through the wire scan, the receiver's stages (detect, usage, quirks, scrub, price,
redact) and call identity, keeping each request's attribute columns. Then times, in interleaved rounds with
``time.thread_time``, ``KafkaPublisher._messages`` (encode every record, group by partition, frame the
SpanRecordBatchV1 messages: the CPU ``publish`` spends per request besides bookkeeping) and ``encode_many``
alone, both with the columns (the attribute maps written from them) and without (upb encodes each dict), and
the columns' share: ``kafka_attributes.attribute_fields``. Checks the two give the same messages once parsed.
Figures only, no assertions.

    python benchmarks/kafka_encode.py --requests 40 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.config import Settings  # noqa: E402
from llm_cost_tracker.frontend import call_identity, decode_limits, default_transforms, load_catalog  # noqa: E402
from llm_cost_tracker.metrics import Metrics  # noqa: E402
from llm_cost_tracker.queue import kafka_attributes, kafka_codec  # noqa: E402
from llm_cost_tracker.queue.kafka import KafkaPublisher  # noqa: E402
from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordBatchV1  # noqa: E402
from llm_cost_tracker.sources.otlp_records import decode_scan  # noqa: E402
from llm_cost_tracker.sources.otlp_scan import scan_request  # noqa: E402
from llm_cost_tracker.transforms.chain import Chain  # noqa: E402
from llm_cost_tracker.transforms.redact import Redact  # noqa: E402
from llm_cost_tracker.types import AttributeColumns, SpanRecord  # noqa: E402

Request = tuple[list[SpanRecord], AttributeColumns]


def _ignore(reason: str, message: str) -> None:
    """A rejected span's reason: the workload's spans are all kept."""


def receiver_requests(count: int) -> list[Request]:
    """``count`` workload requests as the receiver hands them to the Kafka publisher: records and columns."""
    with tempfile.TemporaryDirectory(prefix="lct-kafka-encode-") as data_dir:  # nothing is stored: prices only
        settings = Settings(data_dir=data_dir)
        catalog = load_catalog(settings.pricing, settings.store)
    metrics = Metrics()
    chain = Chain(default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics)),
                  call_identity(settings.calls, metrics))
    limits = decode_limits(settings.decode)
    out = []
    for payload in make_payloads(count, 512, seed=11):
        scan = scan_request(payload, limits)
        assert scan is not None, "the benchmark's requests are well-formed"
        decoded = decode_scan(scan, payload, limits)
        assert decoded is not None and decoded.columns is not None
        out.append((chain.process(decoded.records, _ignore, columns=decoded.columns).records, decoded.columns))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="Export requests of 512 spans")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (medians are printed)")
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    requests = receiver_requests(args.requests)
    spans = sum(len(records) for records, _ in requests)
    kafka_attributes.warm_up()
    described = sum(f is not None for records, columns in requests
                    for f in kafka_attributes.attribute_fields(records, columns))
    for records, columns in requests:  # the same messages once parsed (maps compared as maps)
        with_columns = KafkaPublisher._messages(records, args.partitions, columns)
        without = KafkaPublisher._messages(records, args.partitions)
        assert [SpanRecordBatchV1.FromString(v) for _, _, v in with_columns] == [
            SpanRecordBatchV1.FromString(v) for _, _, v in without]
    runs: dict[str, Callable[[list[SpanRecord], AttributeColumns], Any]] = {
        "publish encode, dicts (upb)": lambda r, c: KafkaPublisher._messages(r, args.partitions),
        "publish encode, columns": lambda r, c: KafkaPublisher._messages(r, args.partitions, c),
        "encode_many, dicts (upb)": lambda r, c: kafka_codec.encode_many(r),
        "encode_many, columns": lambda r, c: kafka_codec.encode_many(r, c),
        "  of which attribute_fields": kafka_attributes.attribute_fields,
    }
    spent: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.thread_time()
            for records, columns in requests:
                run(records, columns)
            spent[name].append((time.thread_time() - started) / spans * 1e6)
    print(f"{spans:,} spans in {args.requests} requests of 512 ({described / spans:.0%} described by their columns), "
          f"{args.partitions} partitions; load {os.getloadavg()[0]:.1f}; median of {args.rounds} interleaved rounds")
    for name, figures in spent.items():
        print(f"  {name:30s} {statistics.median(figures):6.2f} us CPU per span  "
              f"(rounds: {', '.join(f'{x:.2f}' for x in figures)})")
    for kind in ("publish encode", "encode_many"):
        dicts, columns = (statistics.median(spent[f"{kind}, {how}"]) for how in ("dicts (upb)", "columns"))
        print(f"  {kind}: columns / dicts = {columns / dicts:.2f} ({dicts - columns:.2f} us per span less)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
