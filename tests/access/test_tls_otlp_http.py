"""OTLP/HTTP takes the gRPC listener's TLS (mutual TLS included), and forwarding speaks TLS to its next hop:
one service forwards over https:// with a client certificate to another, which stores the priced spans."""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.request

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span


def post(port: int, context: ssl.SSLContext, body: bytes) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    try:
        connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_mutual_tls_on_otlp_http_and_forwarding_over_https(ca, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key, _ = ca.issue("server", server=True)
    client_cert, client_key, _ = ca.issue("client", server=False)
    tls = ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-client-ca-file", str(ca.path)]
    context = ssl.create_default_context(cafile=str(ca.path))
    context.load_cert_chain(str(client_cert), str(client_key))
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))
    backend = ServiceProcess(tmp_path / "backend", *tls)
    front = None
    try:
        backend.start()  # polls /readyz through the installed opener
        request = make_request([make_span(genai_attributes())], {"service.name": "direct"})
        assert post(backend.otlp_http_port, context, request.SerializeToString()) == 200
        with pytest.raises(OSError):  # no client certificate: the handshake is refused
            post(backend.otlp_http_port, ssl.create_default_context(cafile=str(ca.path)), request.SerializeToString())
        front = ServiceProcess(tmp_path / "front", "--forward-otlp",
                               f"https://127.0.0.1:{backend.otlp_http_port}/v1/traces",
                               env={"LCT_FORWARD_CA_FILE": str(ca.path), "LCT_FORWARD_CLIENT_CERT_FILE": str(client_cert),
                                    "LCT_FORWARD_CLIENT_KEY_FILE": str(client_key)}).start()
        sent = make_request([make_span(genai_attributes(input_tokens=1200, output_tokens=300, cache_read=1000))
                             for _ in range(3)], {"service.name": "forwarded"})
        trace_service_pb2_grpc.TraceServiceStub(grpc.insecure_channel(front.endpoint)).Export(sent, timeout=30)
        deadline = time.monotonic() + 60
        while "llm_forward_spans_forwarded_total 3.0" not in front.metrics() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert front.stop() == 0
        assert backend.stop() == 0
    finally:
        if front is not None and front.proc is not None and front.proc.poll() is None:
            front.kill()
        if backend.proc is not None and backend.proc.poll() is None:
            backend.stop()
        urllib.request.install_opener(urllib.request.build_opener())
    rows = backend.sql("SELECT toString(cost_usd) AS cost, attributes['llm_cost_tracker.cost_usd'] AS forwarded "
                       "FROM llm_spans WHERE service_name = 'forwarded'")
    assert len(rows) == 3, front.log()
    assert all(r["forwarded"] == "0.000285" and r["cost"].startswith("0.000285") for r in rows)
