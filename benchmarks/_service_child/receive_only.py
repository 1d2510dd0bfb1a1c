"""Imported by the service child's ``sitecustomize`` when ``ingest.py --receive-only`` started it.

Why: to measure what the receiving side (gRPC, decode, the stages, call identity, the queue) can do on its
own, the batch writer must keep taking and committing batches (the queue's bounds and acknowledgements
work as in a real run) while nothing is built or inserted: the sink's ``write`` does nothing and span
identity lets every record through. The spend metrics still count every batch. Benchmarks only: a
service started this way stores nothing, and says so in its log at start.
"""

from __future__ import annotations

from typing import Any

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.sinks import clickhouse, identity

__all__: list[str] = []


def _write_nothing(self: Any, records: Any, dedup_token: str, columns: Any = ()) -> None:
    return None


def _all_first(self: Any, records: Any, token: str) -> tuple[Any, int]:
    return records, 0


clickhouse.ClickHouseSink.write = _write_nothing  # type: ignore[method-assign]
identity.FirstArrivals.__call__ = _all_first  # type: ignore[method-assign]
get_logger("benchmark").warning("receive-only benchmark: batches are committed without being stored")
