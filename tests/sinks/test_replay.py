"""Parked batches go back into the store once each, through span identity and a per-file insert token."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.sinks.identity import FirstArrivals
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.sinks.replay import REPLAYED_DIR, inspect, replay
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage
from tests.storage.test_reprice import rollups_match_raw


def _records(n: int, first_cost: int) -> list[SpanRecord]:
    return [span_record(provider="openai", request_model="gpt-4o", response_model="gpt-4o", usage=TokenUsage(10, 2),
                        cost_pusd=first_cost + i, attributes={"k": f"v{i}"}) for i in range(n)]


def _stored(store: Any) -> tuple[int, Decimal]:
    count, cost = store.query("SELECT count(), sum(cost_usd) FROM llm_spans").result_rows[0]
    return int(count), cost


@pytest.fixture
def lot(tmp_path: Path) -> ParkingLot:
    return ParkingLot(tmp_path / "parked")


def test_parked_spans_go_into_the_store_and_their_files_move(store: Any, lot: ParkingLot) -> None:
    """Two parked batches: every span stored once with its exact cost and attributes, the rollups agree with the
    raw table, and each file moves to replayed/ (nothing is left to replay)."""
    a, b = _records(3, 1_000), _records(2, 5_000)
    first, second = lot.park(a, "OperationalError: disk full"), lot.park(b, "TypeError: bad row")
    assert [(f.path, f.spans, f.error) for f in inspect(lot)] == [
        (first, 3, "OperationalError: disk full"), (second, 2, "TypeError: bad row")]
    results = replay(lot, ClickHouseSink(store).write, FirstArrivals(store))
    assert [(r.path, r.spans, r.written, r.already_stored, r.error) for r in results] == [
        (first, 3, 3, 0, ""), (second, 2, 2, 0, "")]
    assert _stored(store) == (5, Decimal(sum(r.cost_pusd or 0 for r in a + b)) / 10**12)
    stored = dict(store.query("SELECT span_id, attributes['k'] FROM llm_spans").result_rows)
    assert stored == {r.span_id: r.attributes["k"] for r in a + b}
    rollups_match_raw(store)
    assert lot.files() == []
    assert sorted(p.name for p in (lot.directory / REPLAYED_DIR).iterdir()) == sorted([first.name, second.name])


def test_a_file_replayed_again_is_stored_once(store: Any, lot: ParkingLot) -> None:
    """The same file put back and replayed (an operator's second run, a crash after the insert): nothing new.
    Span identity keeps the spans an earlier attempt under the file's token stored (so that attempt's insert
    can be completed), and that token makes the repeated insert a no-op."""
    path = lot.park(_records(4, 7_000), "error")
    replay(lot, ClickHouseSink(store).write, FirstArrivals(store))
    shutil.copy(lot.directory / REPLAYED_DIR / path.name, path)
    [again] = replay(lot, ClickHouseSink(store).write, FirstArrivals(store))
    assert (again.written, again.already_stored, again.error) == (4, 0, "")
    assert _stored(store)[0] == 4
    rollups_match_raw(store)


def test_the_insert_token_makes_a_repeat_a_no_op_without_span_identity(store: Any, lot: ParkingLot) -> None:
    """Without span identity the file's own token still keeps a second insert of it out (raw and rollups)."""
    path = lot.park(_records(3, 9_000), "error")
    replay(lot, ClickHouseSink(store).write, None)
    shutil.copy(lot.directory / REPLAYED_DIR / path.name, path)
    [again] = replay(lot, ClickHouseSink(store).write, None)
    assert (again.written, again.error) == (3, "")
    assert _stored(store)[0] == 3
    rollups_match_raw(store)


def test_spans_the_store_already_holds_are_left_out(store: Any, lot: ParkingLot) -> None:
    """A batch parked after part of it was stored: only the rest is written."""
    records = _records(5, 11_000)
    ClickHouseSink(store).write(records[:2], "an earlier insert")
    lot.park(records, "timeout")
    [result] = replay(lot, ClickHouseSink(store).write, FirstArrivals(store))
    assert (result.written, result.already_stored) == (3, 2)
    assert _stored(store) == (5, Decimal(sum(r.cost_pusd or 0 for r in records)) / 10**12)
    rollups_match_raw(store)


def test_a_failing_file_stays_parked_and_the_others_go_on(store: Any, lot: ParkingLot) -> None:
    """An unreadable file and one the store refuses again stay where they are, with the reason; the good one
    is stored and moves."""
    broken = lot.park(_records(1, 1), "error")
    broken.write_text('{"trace_id": "truncated', encoding="utf-8")
    refused = lot.park(_records(2, 2), "error")
    good = lot.park(_records(2, 3), "error")
    sink = ClickHouseSink(store)

    def write(records: list[SpanRecord], token: str) -> None:
        if records[0].span_id == refused_ids[0]:
            raise ValueError("still refused")
        sink.write(records, token)

    refused_ids = [r.span_id for r in lot.load(refused)]
    results = {r.path: r for r in replay(lot, write, FirstArrivals(store))}
    assert results[broken].error.startswith("unreadable: JSONDecodeError")
    assert results[refused].error == "ValueError: still refused"
    assert (results[good].written, results[good].error) == (2, "")
    assert sorted(lot.files()) == sorted([broken, refused])
    assert _stored(store)[0] == 2


def test_a_dry_run_writes_and_moves_nothing(store: Any, lot: ParkingLot) -> None:
    path = lot.park(_records(3, 5), "error")
    [result] = replay(lot, ClickHouseSink(store).write, FirstArrivals(store), dry_run=True)
    assert (result.written, result.moved_to) == (3, None)
    assert lot.files() == [path]
    assert _stored(store)[0] == 0


def test_cli_lists_and_replays(store: Any, store_settings: Any, lot: ParkingLot, monkeypatch: Any,
                               capsys: Any) -> None:
    """``parked list`` shows the files; ``parked replay`` stores them (exit 0), then has nothing to do; a file
    that fails makes the exit code 1 and stays."""
    from llm_cost_tracker.cli import main

    monkeypatch.setenv("LCT_CLICKHOUSE_DATABASE", store_settings.clickhouse_database)
    path = lot.park(_records(2, 100), "OperationalError: disk full")
    flags = ["--dir", str(lot.directory), "--data-dir", store_settings.data_dir, "--format", "csv"]
    assert main(["parked", "list", *flags]) == 0
    assert capsys.readouterr().out.splitlines() == ["file,spans,error", f"{path},2,OperationalError: disk full"]
    assert main(["parked", "replay", *flags]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == f"{path},2,2,0,"
    assert "1 of 1 file(s) replayed: wrote 2 span(s), 0 already stored" in captured.err
    assert _stored(store)[0] == 2
    assert main(["parked", "replay", *flags]) == 0
    assert "nothing is parked" in capsys.readouterr().err
    bad = lot.directory / "parked-19700101T000000-1.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    assert main(["parked", "replay", *flags]) == 1
    assert "0 of 1 file(s) replayed" in capsys.readouterr().err
    assert lot.files() == [bad]
