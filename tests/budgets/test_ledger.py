"""The pending-spend ledger and the queue wrapper that feeds it."""

import threading
import time

import pytest

from llm_cost_tracker.budgets import SpendLedger, TrackingQueue
from llm_cost_tracker.budgets._ledger import BUCKET_NS
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.types import QueueFull

from .conftest import NS, USD, rec

T0 = 1_750_000_000 * NS


def test_aggregate_per_dims_and_bucket() -> None:
    """A request's spend is summed per (tenant, service, provider, model, attributes, 15-minute bucket); unpriced spans add nothing."""
    ledger = SpendLedger(("team",))
    agg = ledger.aggregate([rec(T0, USD, attributes={"team": "a"}), rec(T0 + NS, 2 * USD, attributes={"team": "a"}),
                            rec(T0, USD, model="gpt-4o-mini"), rec(T0, None), rec(T0 + BUCKET_NS, 5)])
    dims = ("acme", "chat-api", "openai", "gpt-4o", ("a",))
    assert agg[(dims, T0 // BUCKET_NS)] == 3 * USD
    assert agg[(("acme", "chat-api", "openai", "gpt-4o-mini", ("",)), T0 // BUCKET_NS)] == USD
    assert agg[(("acme", "chat-api", "openai", "gpt-4o", ("",)), T0 // BUCKET_NS + 1)] == 5
    assert len(agg) == 3


def test_publish_adds_commit_subtracts() -> None:
    """Spend is pending from publish until the batch holding it is committed; the write gate is closed in between."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(100), ledger)
    queue.publish([rec(T0, USD), rec(T0, 2 * USD)])
    queue.publish([rec(T0, 4 * USD)])
    assert sum(ledger.snapshot().values()) == 7 * USD and not ledger.writing and queue.depth == 3
    batch = queue.take(10, 0.0)
    assert batch is not None and len(batch.records) == 3
    assert ledger.writing
    assert ledger.read(lambda: "store", timeout=0.05) == ("store", {k: v for k, v in ledger.snapshot().items()}, False)
    queue.commit(batch)
    assert (ledger.writing, ledger.snapshot(), ledger.writes) == (False, {}, 1)
    assert ledger.read(lambda: "store") == ("store", {}, True)
    assert queue.depth == 0 and queue.capacity == 100


def test_reads_hold_writes_back() -> None:
    """A write cannot start while a reader holds the gate, so it never lands in the middle of a read."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(100), ledger)
    queue.publish([rec(T0, USD)])
    events: list[str] = []

    def writer() -> None:
        batch = queue.take(10, 0.0)
        events.append("write")
        queue.commit(batch)

    def query() -> int:
        thread.start()
        time.sleep(0.1)
        events.append("query")
        return 0

    thread = threading.Thread(target=writer)
    _, pending, exact = ledger.read(query)
    thread.join(5)
    assert exact and sum(pending.values()) == USD and events == ["query", "write"]


def test_refused_publish_leaves_no_pending_spend() -> None:
    """When the queue is full the request's spend is taken back out."""
    ledger = SpendLedger()
    queue = TrackingQueue(MemoryQueue(1), ledger)
    with pytest.raises(QueueFull):
        queue.publish([rec(T0), rec(T0)])
    assert ledger.snapshot() == {}
