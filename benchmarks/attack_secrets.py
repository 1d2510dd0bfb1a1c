"""Hostile-client probes of issue 15's secrets, labels and tenants half, against a live service.

(The resource half, starvation, memory and slow clients, is ``attack.py``.)

Each probe prints what it found; the run exits 1 when any secret is stored, labelled, logged or echoed,
or a tenant boundary gives way.

1. secrets: :func:`llm_cost_tracker.testing.secret_probe_request` puts a key, a token or a card number
   in the span name, service name, tenant, model, provider, operation, a resource attribute key and
   value, a span attribute key and ordinary attribute values, and a span with a bad id; the probe counts
   the secrets in the Export answer, ``/metrics``, the log, ``llm_spans`` and both rollups.
2. tenants (a second service with an ``[auth]`` table and a budget per tenant): ``/metrics`` without a
   token and with a tenant's token, a tenant's 404 for an unknown budget (does it name others'?), two
   ``authorization`` headers (gRPC and HTTP), an admin's payload tenant, and a request over its tenant's
   burst (refused whole?).
3. memory and labels: ``--keys`` attribute keys of ``--key-mib`` MiB each (RSS before and after), then
   2,000 distinct providers (size of ``/metrics``).

    python benchmarks/attack_secrets.py                  # exit 1 on any leak or boundary failure
    python benchmarks/attack_secrets.py --keys 200 --key-mib 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import (
    ServiceProcess,
    genai_attributes,
    http_get,
    http_json,
    leaked_secrets,
    make_request,
    make_span,
    secret_probe_request,
)

AUTH = """
[auth]
admin_tokens = ["admin-token"]
[[auth.tenants]]
name = "acme"
tokens = ["acme-token"]
spans_per_second = 1000
burst_seconds = 2
[[auth.tenants]]
name = "globex"
tokens = ["globex-token"]

[[budgets]]
name = "globex-secret-project"
limit_usd = 100
period = "month"
[budgets.scope]
tenant = "globex"
"""


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def code_of(call) -> str:  # type: ignore[no-untyped-def]
    try:
        call()
        return "OK"
    except grpc.RpcError as exc:
        return str(exc.code().name)


def probe_secrets(workdir: Path) -> int:
    service = ServiceProcess(workdir / "secrets").start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        answer = stub.Export(secret_probe_request(), timeout=30)
        places = {"Export answer": leaked_secrets(answer.partial_success.error_message),
                  "/metrics": leaked_secrets(service.metrics())}
    finally:
        service.stop()
    places["log"] = leaked_secrets(service.log())
    places["llm_spans"] = leaked_secrets(json.dumps(service.sql("SELECT * FROM llm_spans")))
    for table in ("llm_spend_hourly", "llm_spend_daily"):
        places[table] = leaked_secrets(json.dumps(service.sql(
            f"SELECT tenant, service_name, provider, model FROM {table}")))
    print("1. secrets in every place a client controls:")
    for place, found in places.items():
        print(f"   {place:<18} {len(found)} secrets in clear {found if found else ''}")
    return sum(len(f) for f in places.values())


def probe_tenants(workdir: Path) -> int:
    config = workdir / "lct.toml"
    config.write_text(AUTH)
    service = ServiceProcess(workdir / "tenants", "--config", str(config)).start()
    failures = 0

    def check(what: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"   {'ok  ' if ok else 'FAIL'} {what}: {detail}")

    print("2. tenant boundary:")
    try:
        port = service.http_port
        check("/metrics without a token", http_get(port, "/metrics")[0] == 401, str(http_get(port, "/metrics")[0]))
        status, body = http_get(port, "/metrics", "Bearer acme-token")
        check("/metrics with a tenant's token", status == 401, f"{status}, names globex's budget: "
              f"{b'globex-secret-project' in body}")
        status, answer = http_json(service.http_url + "/v1/budgets/nope", token="acme-token")
        check("a tenant's 404 names only its budgets", "globex" not in json.dumps(answer), f"{status} {answer}")
        status, _ = http_get(port, "/v1/budgets", "Bearer acme-token", "Bearer admin-token")
        check("HTTP with two authorization headers", status == 401, str(status))
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))

        def export(metadata, n: int = 1, tenant: str = "globex", name: str = "svc"):  # type: ignore[no-untyped-def]
            request = make_request([make_span(genai_attributes()) for _ in range(n)],
                                   {"tenant.id": tenant, "service.name": name})
            return stub.Export(request, metadata=metadata, timeout=30)

        two = (("authorization", "Bearer acme-token"), ("authorization", "Bearer admin-token"))
        check("gRPC with two authorization headers", code_of(lambda: export(two)) == "UNAUTHENTICATED",
              code_of(lambda: export(two)))
        export((("authorization", "Bearer admin-token"),), name="admin-spoof")
        acme = (("authorization", "Bearer acme-token"),)
        code = code_of(lambda: export(acme, n=20_000))
        check("20,000 spans through a 2,000-span burst", code == "RESOURCE_EXHAUSTED", code)
    finally:
        service.stop()
    rows = service.sql("SELECT service_name, tenant FROM llm_spans WHERE service_name = 'admin-spoof'")
    check("an admin's payload picks the tenant", rows == [{"service_name": "admin-spoof", "tenant": ""}], str(rows))
    rows = service.sql("SELECT count() AS n FROM llm_spans WHERE tenant = 'acme'")
    check("spans of the refused burst stored", rows[0]["n"] == 0, str(rows[0]["n"]))
    return failures


def probe_memory(workdir: Path, keys: int, key_mib: int) -> None:
    service = ServiceProcess(workdir / "memory").start()
    try:
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(service.endpoint))
        before = rss_mib(service.proc.pid)
        peak = before
        per_request = max(1, 12 // key_mib)
        for start in range(0, keys, per_request):
            attrs = {**genai_attributes(), **{f"{i:08d}" + "k" * (key_mib << 20): "v"
                                             for i in range(start, min(keys, start + per_request))}}
            stub.Export(make_request([make_span(attrs)]), timeout=60)
            peak = max(peak, rss_mib(service.proc.pid))
        time.sleep(1)
        after = rss_mib(service.proc.pid)
        print(f"3. {keys} attribute keys of {key_mib} MiB: RSS {before:.0f} -> {after:.0f} MiB (peak {peak:.0f})")
        for i in range(0, 2000, 250):
            stub.Export(make_request([make_span(genai_attributes(provider=f"provider-{j}"))
                                      for j in range(i, i + 250)]), timeout=60)
        size = len(service.metrics())
        print(f"   2,000 distinct providers: /metrics {size / 1e3:.0f} kB")
    finally:
        service.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=40, help="long attribute keys to send")
    ap.add_argument("--key-mib", type=int, default=4, help="size of each key")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        leaks = probe_secrets(workdir)
        failures = probe_tenants(workdir)
        probe_memory(workdir, args.keys, args.key_mib)
    print(f"\n{leaks} secrets stored, labelled, logged or echoed; {failures} tenant-boundary failures")
    sys.exit(1 if leaks or failures else 0)


if __name__ == "__main__":
    main()
