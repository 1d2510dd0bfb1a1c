"""Tenants through the real service: the token decides the tenant, rate limits answer with RetryInfo,
and tokens rotate on SIGHUP without a restart."""

from __future__ import annotations

import signal
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

CONFIG = """
[auth]
admin_tokens = ["admin-token"]
[[auth.tenants]]
name = "acme"
tokens = ["{acme_token}"]
[[auth.tenants]]
name = "tiny"
tokens = ["tiny-token"]
spans_per_second = 1
burst_seconds = 10
"""


def export(stub, token: str, n: int = 5, payload_tenant: str = "spoofed"):
    request = make_request([make_span(genai_attributes()) for _ in range(n)], {"tenant.id": payload_tenant})
    return stub.Export(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)


@pytest.fixture
def service(tmp_path):
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG.format(acme_token="acme-old"))
    svc = ServiceProcess(tmp_path / "store", "--config", str(config)).start()
    svc.config = config
    yield svc
    if svc.proc.poll() is None:
        svc.stop()


def test_tenants_limits_and_rotation(service) -> None:
    """Tenant tokens override the payload's tenant, the small tenant is rate limited, and rotation needs no restart."""
    stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
    export(stub, "acme-old")
    export(stub, "admin-token", payload_tenant="from-payload")
    with pytest.raises(grpc.RpcError) as info:
        export(stub, "nobody")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    export(stub, "tiny-token", n=10)
    with pytest.raises(grpc.RpcError) as info:
        export(stub, "tiny-token", n=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(info.value.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    # 10 spans at 1 span/s: a full bucket's worth, less whatever refilled since the first Export
    assert 5.0 <= retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9 <= 10.01

    service.config.write_text(CONFIG.format(acme_token="acme-new"))
    service.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        try:
            export(stub, "acme-new")
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, "new token not accepted after SIGHUP"
            time.sleep(0.1)
    with pytest.raises(grpc.RpcError) as info:
        export(stub, "acme-old")
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert service.stop() == 0
    rows = service.sql("SELECT tenant, count() AS n FROM llm_spans GROUP BY tenant ORDER BY tenant")
    # the admin named no tenant (no lct-tenant header, no --admin-tenant-from-payload): its spans have none
    assert rows == [{"tenant": "", "n": 5}, {"tenant": "acme", "n": 10}, {"tenant": "tiny", "n": 10}]
