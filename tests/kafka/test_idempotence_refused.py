"""A broker without the idempotent producer (tansu) is a setting to change, said in one line naming the flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm_cost_tracker.queue.kafka_testing import TansuBroker


@pytest.mark.parametrize("command", ["consumer", "receiver"])
def test_refused_idempotence_names_the_flag(command: str, tansu: TansuBroker, tmp_path: Path) -> None:
    """With idempotence on (the default), the command exits 2 saying to pass --no-kafka-idempotence."""
    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", command, "--kafka-bootstrap", tansu.bootstrap,
                          "--data-dir", str(tmp_path / "store"), "--otlp-grpc", "127.0.0.1:0", "--http", "127.0.0.1:0",
                          "--log-format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "--no-kafka-idempotence" in out.stderr and "LCT_KAFKA_IDEMPOTENCE=false" in out.stderr
    assert "Traceback" not in out.stderr
