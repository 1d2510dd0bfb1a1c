"""Accepted spans survive a data directory that cannot be written at shutdown, or the exit says how many did not.

The store's files are made read-only under ``setpriv`` without the capabilities that let root ignore
file modes (docs/components.md, "Faults"), after spans were acknowledged and before they were written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

# serial: a 1 s shutdown time, within which (plus the 5 s the writer is waited for) the batch must be parked
pytestmark = [pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
              pytest.mark.serial]
SPANS = 10_000


class UnprivilegedService(ServiceProcess):
    """The service without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so file modes bind it even as root."""

    def command(self) -> list[str]:
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
                "-dac_override,-dac_read_search", "--", *super().command()]


def accept_then_make_store_read_only(svc: ServiceProcess, data: Path) -> None:
    """Acknowledge SPANS spans that sit in the queue (long batch age), then make the data dir read-only."""
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(svc.endpoint))
    subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
    for _ in range(SPANS // 500):
        stub.Export(make_request([make_span(genai_attributes()) for _ in range(500)]), timeout=30)


def parked_records(directory: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in directory.glob("parked-*.jsonl"))


def start(tmp_path: Path, tmpdir: Path) -> tuple[ServiceProcess, Path]:
    data = tmp_path / "store"
    svc = UnprivilegedService(data, "--batch-age-seconds", "600", "--batch-size", "100000",
                              "--queue-capacity", "200000",
                              env={"TMPDIR": str(tmpdir), "LCT_SHUTDOWN_TIMEOUT_SECONDS": "1"})
    svc.log_path = str(tmp_path / "service.log")  # outside the directory made read-only
    return svc.start(), data


def test_unwritable_store_parks_in_the_fallback_directory(tmp_path: Path) -> None:
    """Spans acknowledged before the store became read-only are parked in $TMPDIR, all of them, and the exit is 0."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    svc, data = start(tmp_path, tmpdir)
    try:
        accept_then_make_store_read_only(svc, data)
        code = svc.stop(timeout=120)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data)], check=False)
    assert code == 0, svc.log()
    (fallback,) = tmpdir.glob("llm-cost-tracker-parked-*")
    assert parked_records(fallback) == SPANS, svc.log()
    assert "batch parked" in svc.log()


def test_nowhere_to_park_exits_non_zero_with_the_count(tmp_path: Path) -> None:
    """When the fallback is read-only too, the service exits 3 and its log names exactly the spans it lost."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    svc, data = start(tmp_path, tmpdir)
    subprocess.run(["chmod", "a-w", str(tmpdir)], check=True)
    try:
        accept_then_make_store_read_only(svc, data)
        code = svc.stop(timeout=120)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(data), str(tmpdir)], check=False)
    assert code == 3, svc.log()
    lines = [json.loads(line) for line in Path(svc.log_path).read_text().splitlines() if line.startswith("{")]
    (final,) = [e for e in lines if "spans_lost" in e]
    assert final["spans_lost"] == SPANS
