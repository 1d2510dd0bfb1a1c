"""One running service with tokens (an admin, tenants acme and globex) and small SQL limits, holding spans."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

ADMIN, ACME, GLOBEX = "admin-secret-0001", "acme-secret-0001", "globex-secret-0001"
SENT = {"acme": 30, "globex": 20}
CONFIG = f"""
sql_max_result_rows = 100000
sql_max_execution_seconds = 1.5
sql_max_memory_bytes = 200000000
sql_max_concurrent = 2
[auth]
admin_tokens = ["{ADMIN}"]
[[auth.tenants]]
name = "acme"
tokens = ["{ACME}"]
[[auth.tenants]]
name = "globex"
tokens = ["{GLOBEX}"]
"""


@dataclass
class Running:
    service: ServiceProcess
    config: Path
    stub: Any
    clients: dict[str, Any] = field(default_factory=dict)

    def send(self, tenant: str, count: int, model: str = "gpt-4o-mini") -> None:
        token = {"acme": ACME, "globex": GLOBEX}[tenant]
        request = make_request([make_span(genai_attributes(model=model)) for _ in range(count)],
                               {"service.name": f"{tenant}-bot", "tenant.id": tenant})
        self.stub.Export(request, metadata=[("authorization", f"Bearer {token}")], timeout=10)

    def new_client(self, token: str, **kwargs: Any) -> Any:
        """A new clickhouse-connect client with ``token``. It does not retry: by default clickhouse-connect sends
        a query again after a 503 or 504 (a 202 too many queries, a 159 timeout) twice, so a test would see
        the third answer, after three times the execution limit, instead of the service's answer to its query."""
        kwargs.setdefault("query_retries", 0)
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.service.sql_port, username="default",
                                             password=token, **kwargs)

    def client(self, token: str, **kwargs: Any) -> Any:
        """A clickhouse-connect client with ``token``; without ``kwargs``, the one client of that token (a new
        client asks the server for its version and settings first: ~60 ms, times the hundred refusals asked).
        For one thread at a time: concurrent queries take :meth:`new_client` each."""
        if kwargs:
            return self.new_client(token, **kwargs)
        if token not in self.clients:
            self.clients[token] = self.new_client(token)
        return self.clients[token]

    def wait_rows(self, expected: int) -> None:
        admin = self.client(ADMIN)
        deadline = time.monotonic() + 30
        while admin.command("SELECT count() FROM llm_spans") < expected:
            assert time.monotonic() < deadline, "spans not stored in time"
            time.sleep(0.2)


@pytest.fixture(scope="package")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("sql")
    config = root / "config.toml"
    config.write_text(CONFIG)
    service = ServiceProcess(root / "store", "--config", str(config), "--batch-age-seconds", "0.2").start()
    channel = grpc.insecure_channel(service.endpoint)
    running = Running(service, config, trace_service_pb2_grpc.TraceServiceStub(channel))
    try:
        for tenant, count in SENT.items():
            running.send(tenant, count)
        running.wait_rows(sum(SENT.values()))
        yield running
    finally:
        channel.close()
        assert service.stop() == 0, service.log()
