"""Every refusal of the sandbox, ClickHouse-style, and the service ingesting on through them."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.sql_http.conftest import ACME, ADMIN, SENT, Running

ANYONE = [
    ("INSERT INTO llm_spans (tenant) VALUES ('x')", 164), ("ALTER TABLE llm_spans DELETE WHERE 1", 164),
    ("DROP TABLE llm_spans", 164), ("TRUNCATE TABLE llm_spans", 164), ("CREATE TABLE x (a Int8) ENGINE = Memory", 164),
    ("CREATE TEMPORARY TABLE x (a Int8)", 164), ("OPTIMIZE TABLE llm_spans FINAL", 164), ("SYSTEM FLUSH LOGS", 164),
    ("KILL QUERY WHERE 1", 164), ("SET readonly = 0", 164), ("SET max_result_rows = 0", 164),
    ("SELECT 1 SETTINGS readonly = 0", 164), ("SELECT 1 SETTINGS max_execution_time = 1000", 164),
    ("SELECT 1 INTO OUTFILE '/tmp/lct-outfile'", 164), ("BACKUP TABLE llm_spans TO File('x')", 164),
    ("SELECT 1; SELECT 2", 62), ("EXPLAIN SELECT 1", 164), ("SHOW PROCESSLIST", 164),
    ("SELECT file('/etc/passwd')", 497), ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 497),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'a String')", 497),
    ("SELECT * FROM s3('http://127.0.0.1:9/b/x.csv', 'CSV', 'a String')", 497),
    ("SELECT * FROM remote('127.0.0.1:9000', system.one)", 497),
    ("SELECT * FROM executable('x.sh', 'CSV', 'a String')", 497), ("SELECT * FROM Python(x)", 497),
    ("SELECT * FROM merge('default', 'llm_spans')", 497), ("SELECT * FROM loop(llm_spans) LIMIT 1", 497),
    ("SELECT joinGet('x', 'a', 1)", 497), ("SELECT dictGet('d', 'a', 1)", 497), ("SELECT sleep(1)", 497),
]
TENANT_ONLY = [("SELECT count() FROM system.processes", 497), ("SELECT count() FROM reprice_runs", 497),
               ("SELECT * FROM system.parts", 497), ("SELECT count() FROM llm_spend_hourly_mv", 497),
               ("SELECT * FROM schema_migrations", 497),
               ("SELECT count() FROM llm_spans SETTINGS additional_table_filters = {}", 164)]
"""(An admin has no row filter, so asking for none is setting a setting to its own value: the engine allows it.)"""


def refused(client, query: str) -> tuple[int, str]:
    with pytest.raises(DatabaseError) as caught:
        client.query(query)
    text = str(caught.value)
    code = int(text.split("Code: ", 1)[1].split(".", 1)[0])
    assert "DB::Exception: " in text and text.count("Code:") >= 1
    return code, text


@pytest.mark.parametrize(("query", "code"), ANYONE, ids=[q[:40] for q, _ in ANYONE])
def test_refused_for_everyone(running: Running, query: str, code: int) -> None:
    """Writes, DDL, SYSTEM, setting changes and functions reaching outside are refused, admin included."""
    for token in (ADMIN, ACME):
        assert refused(running.client(token), query)[0] == code, query


@pytest.mark.parametrize(("query", "code"), TENANT_ONLY, ids=[q[:40] for q, _ in TENANT_ONLY])
def test_refused_for_tenants(running: Running, query: str, code: int) -> None:
    """Tables that reveal other tenants (queries, parts, tables without a tenant column) are not a tenant's."""
    assert refused(running.client(ACME), query)[0] == code
    running.client(ADMIN).query(query.replace("SELECT *", "SELECT count()"))  # an admin reads them


def test_limits(running: Running) -> None:
    """Result rows, execution time and memory are bounded by the service's sql_* settings."""
    client = running.client(ACME)
    assert refused(client, "SELECT number FROM numbers(100001)")[0] == 396
    assert refused(client, "SELECT count() FROM numbers_mt(1000000000000)")[0] == 159
    assert refused(client, "SELECT groupArray(number) FROM numbers(100000000)")[0] == 241


def test_concurrency_limit(running: Running) -> None:
    """Past sql_max_concurrent running queries, a query waits for a slot, then is refused with 202."""
    slow = "SELECT count() FROM numbers_mt(1000000000000)"

    # a client (and connection) per concurrent query, made beforehand: a new client's own first queries (its
    # version and settings) would otherwise compete with the slow queries for the slots
    clients = [running.new_client(ADMIN) for _ in range(5)]

    def run(client: Any) -> int:
        try:
            client.query(slow)
        except DatabaseError as exc:
            return int(str(exc).split("Code: ", 1)[1].split(".", 1)[0])
        return 0

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(run, clients))
    assert set(codes) <= {159, 202} and 202 in codes, codes


def test_ingest_goes_on_after_refusals(running: Running) -> None:
    """After every refusal above, spans are still accepted and stored, and the counts add up."""
    admin = running.client(ADMIN)
    before = admin.command("SELECT count() FROM llm_spans")
    # another model than the fixture's spans: test_endpoint's exact totals count those, and under pytest-xdist
    # this file may run before that one on the same service
    running.send("acme", 7, model="gpt-4o")
    running.wait_rows(before + 7)
    assert running.client(ACME).command("SELECT count() FROM llm_spans") >= SENT["acme"] + 7
