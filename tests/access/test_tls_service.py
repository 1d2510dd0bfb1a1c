"""TLS and mutual TLS on both listeners, with the server certificate rotated while running."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request

import grpc
import pytest
from cryptography import x509
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from llm_cost_tracker.testing import ServiceProcess, genai_attributes, make_request, make_span


def served_serial(port: int, ca_path, client: tuple) -> int:
    """Serial number of the certificate the server presents on a fresh handshake."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.load_cert_chain(str(client[0]), str(client[1]))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_mutual_tls_and_rotation(ca, tmp_path) -> None:
    """Clients with a CA-signed certificate get through on gRPC and HTTPS; others are refused; rotation applies live."""
    cert, key, serial = ca.issue("server", server=True)
    client_cert, client_key, _ = ca.issue("client", server=False)
    svc = ServiceProcess(tmp_path / "store", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                         "--tls-client-ca-file", str(ca.path))
    context = ssl.create_default_context(cafile=str(ca.path))
    context.load_cert_chain(str(client_cert), str(client_key))
    https = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    urllib.request.install_opener(https)  # ServiceProcess.start polls /readyz through urllib
    try:
        svc.start()
        with https.open(svc.http_url + "/healthz", timeout=5) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            assert response.headers["X-Frame-Options"] == "DENY"

        creds = grpc.ssl_channel_credentials(ca.path.read_bytes(), client_key.read_bytes(), client_cert.read_bytes())
        stub = trace_service_pb2_grpc.TraceServiceStub(grpc.secure_channel(svc.endpoint, creds))
        stub.Export(make_request([make_span(genai_attributes())]), timeout=10)

        anonymous = grpc.ssl_channel_credentials(ca.path.read_bytes())
        with pytest.raises(grpc.RpcError) as info:
            trace_service_pb2_grpc.TraceServiceStub(grpc.secure_channel(svc.endpoint, anonymous)).Export(
                make_request([make_span(genai_attributes())]), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(OSError):
            urllib.request.urlopen(svc.http_url + "/healthz", timeout=5,
                                   context=ssl.create_default_context(cafile=str(ca.path)))

        assert served_serial(svc.grpc_port, ca.path, (client_cert, client_key)) == serial
        time.sleep(0.05)  # a new mtime for the rotated files
        _, _, new_serial = ca.issue("server", server=True)
        assert served_serial(svc.http_port, ca.path, (client_cert, client_key)) == new_serial
        assert served_serial(svc.grpc_port, ca.path, (client_cert, client_key)) == new_serial
        stub.Export(make_request([make_span(genai_attributes())]), timeout=10)
    finally:
        urllib.request.install_opener(urllib.request.build_opener())
        if svc.proc is not None:
            assert svc.stop() == 0
    assert svc.sql("SELECT count() AS n FROM llm_spans") == [{"n": 2}]


def test_sql_endpoint_serves_tls_with_the_other_ports(ca, tmp_path) -> None:
    """The SQL endpoint serves the listeners' certificate (rotated live), and `sql` reads through it."""
    import subprocess
    import sys

    import clickhouse_connect

    cert, key, serial = ca.issue("server", server=True)
    svc = ServiceProcess(tmp_path / "store", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                         "--auth-token", "sql-admin-token")
    context = ssl.create_default_context(cafile=str(ca.path))
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))
    try:
        svc.start()
        client = clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, password="sql-admin-token",
                                               secure=True, ca_cert=str(ca.path))
        assert client.command("SELECT 1") == 1
        with pytest.raises(Exception):  # noqa: B017 - plain HTTP on the TLS port is not an answer
            clickhouse_connect.get_client(host="127.0.0.1", port=svc.sql_port, password="sql-admin-token",
                                          connect_timeout=5, query_retries=0)

        def serial_on(port: int) -> int:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number

        assert serial_on(svc.sql_port) == serial
        time.sleep(0.05)
        _, _, new_serial = ca.issue("server", server=True)
        assert serial_on(svc.sql_port) == new_serial
        out = subprocess.run([sys.executable, "-m", "llm_cost_tracker.cli", "sql", "SELECT 41 + 1 AS n", "--format",
                              "json", "--data-dir", svc.data_dir], capture_output=True, text=True, timeout=120,
                             env={**svc.env, "LCT_AUTH_TOKEN": "sql-admin-token"})
        assert out.returncode == 0 and '"n": 42' in out.stdout, out.stderr
    finally:
        urllib.request.install_opener(urllib.request.build_opener())
        if svc.proc is not None:
            assert svc.stop() == 0
