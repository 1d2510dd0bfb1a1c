"""Shutdown with the batch writer stuck inside a store write (a hung insert): the spans queued behind its
batch are parked by the stopping thread, and only the batch in the hung write counts as lost.

The in-process service runs for real (front end, budgets' tracking queue, chDB for migrations and the
first-arrival check); only the sink is a store whose insert blocks on an event.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from llm_cost_tracker import pipeline
from llm_cost_tracker.config import Settings
from llm_cost_tracker.pipeline import EXIT_SPANS_LOST, AllInOne
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord
from tests.conftest import HangingSink

# serial: the stuck case waits out the writer's join deadline (0.2 s shutdown + 5 s) and must not hang past it
pytestmark = pytest.mark.serial
REQUEST_SPANS = 5
"""Spans per request, and the batch size: each request is one batch."""
QUEUED_REQUESTS = 3


def request(number: int) -> list[SpanRecord]:
    return [span_record(span_id=f"{number:08x}{i:08x}") for i in range(REQUEST_SPANS)]


def ids(records: list[SpanRecord]) -> list[str]:
    return [r.span_id for r in records]


@pytest.fixture
def sink() -> Iterator[HangingSink]:
    hanging = HangingSink()
    yield hanging
    hanging.release.set()  # lets a writer thread still stuck finish (its queue is closed: it then stops)


@pytest.fixture
def parking(tmp_path: Path) -> ParkingLot:
    return ParkingLot(tmp_path / "parked")  # not in the session's shared chDB directory


@pytest.fixture
def service(store_settings: Settings, parking: ParkingLot, sink: HangingSink,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[AllInOne]:
    """The all-in-one service with ``--ack stored``, one request per batch and a 0.2 s shutdown timeout."""
    settings = store_settings.replace(otlp_grpc="127.0.0.1:0", otlp_http="off", http="127.0.0.1:0", sql_http="off",
                                      ack="stored", batch_size=REQUEST_SPANS, batch_age_seconds=0.01,
                                      shutdown_timeout_seconds=0.2)
    monkeypatch.setattr(pipeline, "ClickHouseSink", lambda client: sink)
    svc = AllInOne(settings)
    svc.writer_parking = parking
    svc.start()
    yield svc
    svc.stop()  # a no-op when the test stopped it


def accept_behind_a_hung_insert(svc: AllInOne, sink: HangingSink) -> tuple[Future[None], list[Future[None]]]:
    """One request the writer takes and hangs writing, then QUEUED_REQUESTS accepted behind it: their acks."""
    in_flight = svc.queue.publish(request(0))
    assert sink.entered.wait(30), "the writer never started the first insert"
    return in_flight, [svc.queue.publish(request(n)) for n in range(1, QUEUED_REQUESTS + 1)]


def stop_within(svc: AllInOne, seconds: float) -> int:
    """``svc.stop()``'s exit code, failing the test (not hanging it) when it takes longer than ``seconds``."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(svc.stop()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"stop() did not return within {seconds} s"
    return result[0]


def test_hung_insert_parks_the_queued_spans_and_loses_only_its_batch(service: AllInOne, sink: HangingSink,
                                                                     tmp_path: Path) -> None:
    """The writer never comes back: the queued requests are parked (same span ids, acks answered), and the exit
    is 3 with exactly the hung batch's spans counted lost."""
    in_flight, queued = accept_behind_a_hung_insert(service, sink)
    with capture_logs() as logs:
        code = stop_within(service, 60)
    assert code == EXIT_SPANS_LOST
    lot = ParkingLot(tmp_path / "parked")
    parked = [span_id for path in lot.files() for span_id in ids(lot.load(path))]
    assert sorted(parked) == sorted(ids([r for n in range(1, QUEUED_REQUESTS + 1) for r in request(n)]))
    for ack in queued:
        assert ack.result(timeout=0) is None  # parked and committed: an --ack stored client has its answer
    assert not in_flight.done() and sink.written == []
    (final,) = [e for e in logs if "spans_lost" in e]
    assert final["spans_lost"] == REQUEST_SPANS
    (stuck,) = [e for e in logs if e["event"].startswith("writer did not finish")]
    assert stuck["spans_parked"] == QUEUED_REQUESTS * REQUEST_SPANS and stuck["spans_in_hung_write"] == REQUEST_SPANS


def test_insert_returning_before_the_deadline_writes_everything(service: AllInOne, sink: HangingSink,
                                                                tmp_path: Path) -> None:
    """The hung insert returns once shutdown began, before the writer's join deadline: the writer writes every
    span itself, nothing is parked, and the exit is 0."""
    in_flight, queued = accept_behind_a_hung_insert(service, sink)
    stopping = threading.Thread(target=lambda: codes.append(service.stop()), daemon=True)
    codes: list[int] = []
    stopping.start()
    assert service._stopped.wait(30)  # shutdown began: the release comes within its deadline
    sink.release.set()
    stopping.join(60)
    assert codes == [0]
    assert sorted(sink.written) == sorted(ids([r for n in range(QUEUED_REQUESTS + 1) for r in request(n)]))
    assert all(ack.result(timeout=0) is None for ack in (in_flight, *queued))
    assert ParkingLot(tmp_path / "parked").files() == []


class HangingParking(ParkingLot):
    """A parking directory on the same stalled disk: every park blocks until ``release`` is set."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.release = threading.Event()

    def park(self, records, error):  # type: ignore[no-untyped-def]
        assert self.release.wait(60), "the test never released the hung parking"
        return super().park(records, error)


class TestParkingHangsToo:
    @pytest.fixture
    def parking(self, tmp_path: Path) -> Iterator[ParkingLot]:
        hanging = HangingParking(tmp_path / "parked")
        yield hanging
        hanging.release.set()

    def test_the_stop_ends_and_counts_every_unparked_span_lost(self, service: AllInOne, sink: HangingSink) -> None:
        """The store write and the parking both hang: the stop still returns (after its two bounded waits) with
        exit 3, and every accepted span not written is counted lost, the queued ones too."""
        accept_behind_a_hung_insert(service, sink)
        with capture_logs() as logs:
            code = stop_within(service, 60)
        assert code == EXIT_SPANS_LOST
        (final,) = [e for e in logs if "spans_lost" in e]
        assert final["spans_lost"] == (QUEUED_REQUESTS + 1) * REQUEST_SPANS
        (stuck,) = [e for e in logs if e["event"].startswith("writer did not finish")]
        assert "parking what was queued" in stuck["event"]
