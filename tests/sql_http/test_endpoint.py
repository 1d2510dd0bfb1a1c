"""The SQL endpoint with clickhouse-connect as the client: exact totals, tenant rows, what clients send and read."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from clickhouse_connect.driver.exceptions import ProgrammingError

from tests.sql_http.conftest import ACME, ADMIN, GLOBEX, SENT, Running


def http(running: Running, params: dict[str, str], body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = f"{running.service.sql_url}/?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_admin_reads_exact_totals(running: Running) -> None:
    """Admin: every tenant's rows, costs as exact Decimals equal to count x the per-span price."""
    admin = running.client(ADMIN)
    rows = admin.query("SELECT tenant, count(), sum(cost_usd), any(cost_usd) FROM llm_spans "
                       "WHERE service_name LIKE '%-bot' AND model = 'gpt-4o-mini' GROUP BY tenant ORDER BY tenant").result_rows
    assert [(t, n) for t, n, _, _ in rows] == sorted(SENT.items())
    for _, count, total, each in rows:
        assert isinstance(total, Decimal) and each > 0 and total == each * count


def test_tenant_sees_only_its_rows_everywhere(running: Running) -> None:
    """A tenant token reads its own rows of every tenant table, however the query names them."""
    acme = running.client(ACME)
    for table in ("llm_spans", "llm_spend_hourly", "llm_spend_daily", "default.llm_spans", "reprice_audit", "schedules"):
        tenants = acme.query(f"SELECT DISTINCT tenant FROM {table}").result_rows
        assert tenants in ([("acme",)], []), (table, tenants)
    assert acme.command("SELECT sum(requests) FROM llm_spend_hourly") >= SENT["acme"]
    for query in ("SELECT count() FROM llm_spans WHERE tenant = 'globex'",
                  "WITH x AS (SELECT * FROM llm_spans) SELECT count() FROM x WHERE tenant = 'globex'",
                  "SELECT count() FROM (SELECT tenant FROM llm_spans AS s) WHERE tenant != 'acme'",
                  "SELECT count() FROM view(SELECT * FROM llm_spend_daily) WHERE tenant = 'globex'",
                  "SELECT count() FROM llm_spans WHERE trace_id IN (SELECT trace_id FROM llm_spans WHERE tenant='globex')"):
        assert acme.command(query) == 0, query
    tables = {r[0] for r in acme.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    assert tables == {"llm_spans", "llm_spend_hourly", "llm_spend_daily", "reprice_audit", "schedules", "schedule_jobs"}
    globex = running.client(GLOBEX)
    assert globex.command("SELECT count() FROM llm_spans") == globex.command(
        "SELECT count() FROM llm_spans WHERE tenant = 'globex'") >= SENT["globex"]


def test_every_form_of_credentials(running: Running) -> None:
    """Basic auth, X-ClickHouse-Key, ?password= and Bearer all name the caller; none or a wrong one is 516."""
    q = {"query": "SELECT count() FROM llm_spans WHERE tenant = 'globex'"}
    basic = "Basic " + base64.b64encode(f"anyone:{ACME}".encode()).decode()
    for headers, params in (({"Authorization": basic}, {}), ({"X-ClickHouse-Key": ACME}, {}),
                            ({}, {"password": ACME}), ({"Authorization": f"Bearer {ACME}"}, {})):
        status, _, body = http(running, {**q, **params}, headers=headers)
        assert (status, body) == (200, b"0\n"), headers
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-ClickHouse-Key": "nope"}):
        status, got, body = http(running, q, headers=headers)
        assert status == 401 and got["X-ClickHouse-Exception-Code"] == "516"
        assert body.startswith(b"Code: 516. DB::Exception: ") and body.rstrip().endswith(b"(AUTHENTICATION_FAILED)")


def test_what_http_clients_send_and_read(running: Running) -> None:
    """Query in URL or gzip body, default_format, database, param_*, query_id, compression, headers."""
    key = {"X-ClickHouse-Key": ADMIN}
    status, headers, body = http(running, {"query": "SELECT {n:UInt8} + 1 AS x", "param_n": "41",
                                           "default_format": "JSONEachRow", "database": "default",
                                           "query_id": "q-123"}, headers=key)
    assert status == 200 and json.loads(body) == {"x": 42}
    assert headers["X-ClickHouse-Query-Id"] == "q-123" and headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Timezone"] and json.loads(headers["X-ClickHouse-Summary"])["read_rows"] == "1"
    status, headers, body = http(running, {"enable_http_compression": "1"},
                                 body=gzip.compress(b"SELECT count() FROM llm_spans FORMAT JSON"),
                                 headers={**key, "Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["X-ClickHouse-Format"] == "JSON"
    assert json.loads(gzip.decompress(body))["rows"] == 1
    status, _, body = http(running, {"query": "SELECT 1"}, body=b"+ 1", headers=key)  # URL + body, as ClickHouse
    assert (status, body) == (200, b"2\n")
    assert http(running, {}, headers=key)[2] == b"Ok.\n"
    with urllib.request.urlopen(f"{running.service.sql_url}/ping", timeout=5) as response:
        assert response.read() == b"Ok.\n"


def test_clickhouse_connect_features(running: Running) -> None:
    """Server-side parameters, numpy/arrow-free rows, compression choices and settings the client sets."""
    for compress in (True, False, "gzip", "zstd", "lz4"):
        client = running.client(ADMIN, compress=compress)
        assert client.query("SELECT {t:String} AS t", parameters={"t": "acme"}).result_rows == [("acme",)]
    client = running.client(ADMIN, settings={"output_format_json_quote_64bit_integers": 0})
    assert client.command("SELECT count() FROM llm_spans") >= sum(SENT.values())
    with pytest.raises(ProgrammingError, match="readonly"):  # it read system.settings: nothing is changeable
        client.query("SELECT 1", settings={"max_result_rows": 10**9})
    for params in ({"max_result_rows": "1000000000"}, {"readonly": "0"}, {"additional_table_filters": "{}"},
                   {"max_memory_usage": "0"}):
        status, headers, body = http(running, {"query": "SELECT 1", **params}, headers={"X-ClickHouse-Key": ACME})
        assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "164", params
        assert body.startswith(b"Code: 164. DB::Exception: ") and b"(READONLY)" in body
    status, _, body = http(running, {"query": "SELECT 1", "max_result_rows": "10", "readonly": "1",
                                     "output_format_json_quote_64bit_integers": "0"}, headers={"X-ClickHouse-Key": ACME})
    assert (status, body) == (200, b"1\n")  # lowering a limit, asking for read-only and format settings are fine
