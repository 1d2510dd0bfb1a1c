"""The service says at start that parked batches wait to be replayed, and says nothing when none do."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from llm_cost_tracker.config import Settings
from llm_cost_tracker.pipeline import AllInOne
from llm_cost_tracker.sinks.parking import ParkingLot
from llm_cost_tracker.testing import span_record


def _started_logs(settings: Settings, lot: ParkingLot) -> list[dict[str, object]]:
    svc = AllInOne(settings.replace(otlp_grpc="127.0.0.1:0", otlp_http="off", http="127.0.0.1:0", sql_http="off"))
    svc.writer_parking = lot  # not in the session's shared chDB directory
    with capture_logs() as logs:
        svc.start()
    assert svc.stop() == 0
    return [e for e in logs if e["event"] == "parked batches wait to be replayed"]


def test_parked_files_are_reported_at_start(store_settings: Settings, tmp_path: Path) -> None:
    lot = ParkingLot(tmp_path / "parked", [tmp_path / "fallback"])
    assert _started_logs(store_settings, lot) == []
    lot.park([span_record()], "OperationalError: disk full")
    ParkingLot(tmp_path / "fallback").park([span_record(), span_record()], "TypeError")
    (warning,) = _started_logs(store_settings, lot)
    assert warning["files"] == 2
    assert warning["directories"] == sorted([str(tmp_path / "parked"), str(tmp_path / "fallback")])
    assert str(warning["command"]).startswith("llm-cost-tracker parked replay (with this service stopped")
