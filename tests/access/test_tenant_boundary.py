"""The tenant boundary of OTLP Export: one bearer token per request, an admin's spans name their tenant
only explicitly, and a request over its tenant's burst is refused whole."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span

CONFIG = """
[auth]
admin_tokens = ["admin-token"]
[[auth.tenants]]
name = "acme"
tokens = ["acme-token"]
spans_per_second = 100
burst_seconds = 2
"""


def export(stub, *metadata: tuple[str, str], n: int = 1, tenant: str = "from-payload", service: str = "svc"):
    request = make_request([make_span(genai_attributes()) for _ in range(n)],
                           {"tenant.id": tenant, "service.name": service})
    return stub.Export(request, metadata=metadata, timeout=30)


def start(tmp_path, *flags: str) -> ServiceProcess:
    config = tmp_path / "lct.toml"
    config.write_text(CONFIG)
    return ServiceProcess(tmp_path / "store", "--config", str(config), *flags).start()


def tenants_by_service(service: ServiceProcess) -> dict[str, str]:
    return {r["service_name"]: r["tenant"] for r in service.sql("SELECT service_name, tenant FROM llm_spans")}


def test_one_token_explicit_admin_tenants_and_whole_bursts(tmp_path) -> None:
    """Two authorization headers are refused in either order; an admin's spans get the lct-tenant header's
    tenant or none, never the payload's; a tenant's spans its own; 300 spans through a 200-span burst are
    refused without RetryInfo (never admitted), while 200 pass."""
    service = start(tmp_path)
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        for first, second in (("acme-token", "admin-token"), ("admin-token", "acme-token")):
            with pytest.raises(grpc.RpcError) as info:
                export(stub, ("authorization", f"Bearer {first}"), ("authorization", f"Bearer {second}"))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        admin = ("authorization", "Bearer admin-token")
        export(stub, admin, service="admin-plain")
        export(stub, admin, ("lct-tenant", "globex"), service="admin-header")
        with pytest.raises(grpc.RpcError) as info:
            export(stub, admin, ("lct-tenant", "a"), ("lct-tenant", "b"))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        acme = ("authorization", "Bearer acme-token")
        export(stub, acme, ("lct-tenant", "globex"), service="acme")
        with pytest.raises(grpc.RpcError) as info:
            export(stub, acme, n=300)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "over the burst of 200 spans" in info.value.details()
        trailers = dict(info.value.trailing_metadata() or ())
        assert "grpc-status-details-bin" not in trailers  # no RetryInfo: retrying cannot help
        export(stub, acme, n=199, service="acme")  # with the 1 sent above: the whole burst
    finally:
        assert service.stop() == 0
    assert tenants_by_service(service) == {"admin-plain": "", "admin-header": "globex", "acme": "acme"}


def test_admin_tenant_from_payload_is_a_setting(tmp_path) -> None:
    """With --admin-tenant-from-payload an admin's spans keep the payload's tenant (a trusted gateway)."""
    service = start(tmp_path, "--admin-tenant-from-payload")
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        export(stub, ("authorization", "Bearer admin-token"), service="gateway")
    finally:
        assert service.stop() == 0
    assert tenants_by_service(service) == {"gateway": "from-payload"}
