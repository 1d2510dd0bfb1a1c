"""The sink loop: retries retriable failures, parks permanent ones, commits only after a write."""

import threading

from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sinks.batcher import BatchPolicy, BatchWriter
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord
from tests.conftest import HangingSink


def recs(n: int, start: int = 0) -> list[SpanRecord]:
    return [span_record(span_id=f"{i:016x}", attributes={"a": "b"}) for i in range(start, start + n)]


class FlakySink:
    """Fails the first ``failures`` writes with ``error``, then records what it was given."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.written: list[str] = []
        self.tried = threading.Event()
        """Set at the first write: the writer holds a batch."""

    def write(self, records, dedup_token="", columns=()):
        self.tried.set()
        if self.failures:
            self.failures -= 1
            raise self.error
        self.written.extend(r.span_id for r in records)


def run_writer(sink, tmp_path, retriable: bool, batches: list[list[SpanRecord]]):
    queue = MemoryQueue(capacity=1000, ack_when_stored=True)
    metrics = Metrics()
    writer = BatchWriter(queue, sink, ParkingLot(tmp_path), lambda e: retriable,
                         BatchPolicy(max_records=5, max_age_seconds=0.01, retry_initial_seconds=0.01), metrics)
    writer.start()
    acks = [queue.publish(b) for b in batches]
    for ack in acks:
        ack.result(timeout=10)
    queue.close()
    assert writer.join(10)
    return metrics, queue


def test_retriable_failures_are_retried_until_written(tmp_path) -> None:
    """Three failed writes are retried and every record is written exactly once, in order."""
    sink = FlakySink(3, ConnectionError("store down"))
    metrics, queue = run_writer(sink, tmp_path, True, [recs(5), recs(5, 5)])
    assert sink.written == [f"{i:016x}" for i in range(10)]
    assert metrics.sink_errors.labels(retriable="true")._value.get() == 3
    assert metrics.rows_written_total() == 10 and isinstance(metrics.rows_written_total(), int)
    assert queue.depth == 0


def test_permanent_failure_parks_the_batch(tmp_path) -> None:
    """A permanent failure parks the batch on disk, readable back, and the loop carries on."""
    sink = FlakySink(1, ValueError("Code: 53. Type mismatch"))
    metrics, _ = run_writer(sink, tmp_path, False, [recs(5), recs(5, 5)])
    lot = ParkingLot(tmp_path)
    (parked,) = lot.files()
    assert [r.span_id for r in lot.load(parked)] == [f"{i:016x}" for i in range(5)]
    assert sink.written == [f"{i:016x}" for i in range(5, 10)]
    assert "Type mismatch" in parked.read_text()


def test_shutdown_deadline_parks_instead_of_hanging(tmp_path) -> None:
    """A store that never recovers is given up on at the shutdown deadline, and the batch is parked."""
    sink = FlakySink(10**9, ConnectionError("gone"))
    queue = MemoryQueue(capacity=100)
    writer = BatchWriter(queue, sink, ParkingLot(tmp_path), lambda e: True,
                         BatchPolicy(5, 0.01, retry_initial_seconds=0.01, retry_max_seconds=0.05), Metrics())
    writer.start()
    queue.publish(recs(3))
    assert sink.tried.wait(10), "the writer never tried the store"
    queue.close()
    writer.give_up_after(0.2)
    assert writer.join(5)
    assert sink.written == [] and not writer.healthy  # never stored, and readiness says the store is failing
    assert len(ParkingLot(tmp_path).load(ParkingLot(tmp_path).files()[0])) == 3


def stuck_writer(sink: HangingSink, parking: ParkingLot) -> tuple[BatchWriter, MemoryQueue, list]:
    """A writer hung in its first insert (a batch of 5), three more batches of 5 queued behind it, the queue closed;
    the acks of the four (``--ack stored``)."""
    queue = MemoryQueue(capacity=100, ack_when_stored=True)
    writer = BatchWriter(queue, sink, parking, lambda e: True, BatchPolicy(5, 0.01), Metrics())
    writer.start()
    acks = [queue.publish(recs(5))]
    assert sink.entered.wait(10), "the writer never started the first insert"
    acks += [queue.publish(recs(5, start)) for start in (5, 10, 15)]
    queue.close()
    return writer, queue, acks


class ReleasingParkingLot(ParkingLot):
    """Before parking its first batch, lets the hung insert return and waits for the writer to finish with it."""

    def __init__(self, directory, sink: HangingSink) -> None:
        super().__init__(directory)
        self.sink = sink
        self.writer: BatchWriter | None = None
        self.writer_stopped: bool | None = None

    def park(self, records, error):
        if self.writer_stopped is None:
            assert self.writer is not None
            self.sink.release.set()
            self.writer_stopped = self.writer.join(10)
        return super().park(records, error)


def test_park_queued_takes_over_from_a_writer_that_comes_back(tmp_path) -> None:
    """The hung insert returns while the stopping thread parks the queue: the writer commits its own batch and
    takes no other, so each span is written or parked exactly once and nothing stays uncommitted."""
    sink = HangingSink()
    lot = ReleasingParkingLot(tmp_path, sink)
    writer, queue, acks = stuck_writer(sink, lot)
    lot.writer = writer
    done = writer.park_queued("writer stuck")
    assert lot.writer_stopped  # back from its insert, the writer stopped instead of taking the next batch
    assert sink.written == [f"{i:016x}" for i in range(5)]
    parked = sorted(r.span_id for path in lot.files() for r in lot.load(path))
    assert parked == [f"{i:016x}" for i in range(5, 20)] and (done.parked, done.unparked) == (15, 0)
    assert queue.depth == 0 and all(ack.result(timeout=0) is None for ack in acks)
    assert "writer stuck" in lot.files()[0].read_text()


def test_park_queued_counts_what_cannot_be_parked(tmp_path) -> None:
    """With no directory to park in, the queued spans stay uncommitted (the queue's depth counts them as lost)
    and in ``lost``; the hung batch, once its insert returns, is written and committed."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sink = HangingSink()
    writer, queue, acks = stuck_writer(sink, ParkingLot(blocker / "parked", [blocker / "fallback"]))
    done = writer.park_queued("writer stuck")
    assert (done.parked, done.unparked) == (0, 15) and writer.lost == 15
    assert queue.depth == 20 and not any(ack.done() for ack in acks)
    sink.release.set()
    assert writer.join(10)
    assert queue.depth == 15 and acks[0].done() and not any(ack.done() for ack in acks[1:])
