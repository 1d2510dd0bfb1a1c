"""The ClickHouse sink: the Arrow insert into chDB from a file (the same rows as clickhouse-connect's insert, no
copy of the batch alive during it), and the protobuf insert (the Kafka consumer's batches): same rows as Arrow,
deduplicated, and a clean fall back to Arrow where the store refuses it."""

from __future__ import annotations

import dataclasses
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.sinks.clickhouse import INSERT_SETTINGS, ClickHouseSink, is_retriable
from llm_cost_tracker.sinks.identity import token_hash
from llm_cost_tracker.storage.client import DEDUP_SETTINGS
from llm_cost_tracker.storage.rows import records_to_arrow
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage

ROWS = ("SELECT * EXCEPT (resource_attributes, attributes), mapSort(resource_attributes) AS r, "
        "mapSort(attributes) AS a FROM {} ORDER BY span_id")


def record(i: int, **changes: Any) -> SpanRecord:
    return dataclasses.replace(span_record(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id="" if i % 3 else f"{i + 1:016x}",
        start_time_ns=1_700_000_000_000_000_000 + i * 1_000_003, duration_ns=i * 17, service_name=f"svc-{i % 2}",
        span_name="chat ✓", status_code=i % 3, resource_attributes={"service.name": f"svc-{i % 2}", "k": "ü"},
        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.conversation.id": f"c{i}", "n": str(i)},
        tenant=f"t{i % 4}", dialect="genai", operation="chat", provider="openai", request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06", usage=TokenUsage(1000 + i, 200, 300, 50, 80),
        pricing_model="gpt-4o-2024-08-06", price_version="2024-08-06", cost_pusd=4_250_000_000 + i,
        pricing_status="priced", reported_cost_pusd=None, cache_savings_pusd=i - 5,
    ), **changes)


def batch_of(records: list[SpanRecord]) -> kafka_codec.WireBatch:
    """A consumer batch: a SpanRecordBatchV1 message of all but the last record, and a v1.0 single record."""
    batch = kafka_codec.WireBatch()
    batch.add(kafka_codec.encode_batch(kafka_codec.encode_many(records[:-1])), kafka_codec.batch_headers(len(records) - 1))
    batch.add(kafka_codec.encode(records[-1]), [])
    return batch


def sample() -> list[SpanRecord]:
    return [record(i) for i in range(20)] + [
        record(20, cost_pusd=None, pricing_status="unpriced", pricing_model="", price_version="",
               cache_savings_pusd=None),
        record(21, cost_pusd=2**63 - 1, reported_cost_pusd=0, attributes={}, resource_attributes={}),
        record(22, cost_pusd=0, reported_cost_pusd=123_456_789_012, usage=TokenUsage()),
        record(23, start_time_ns=0, tenant="", service_name="", span_name=""),
    ]


def test_records_into_chdb_are_the_rows_clickhouse_connect_inserts(store: Any) -> None:
    """The chDB Arrow insert (an IPC file read by INSERT ... FROM INFILE) stores what clickhouse-connect's
    insert_arrow of the same stamped table stores, every column; a repeat of its token is a no-op in the table
    and both rollups, a new token is not."""
    records = sample()
    sink = ClickHouseSink(store)
    sink.write(records, "tok-arrow")
    store.command("CREATE TABLE arrow_copy AS llm_spans")
    stamped = records_to_arrow(records).append_column(
        "insert_token", pa.array([token_hash("tok-arrow")] * len(records), pa.uint64()))
    store.insert_arrow("arrow_copy", stamped,
                       settings=INSERT_SETTINGS | DEDUP_SETTINGS | {"insert_deduplication_token": "tok-arrow"})
    rows = store.query(ROWS.format("llm_spans")).result_rows
    assert rows == store.query(ROWS.format("arrow_copy")).result_rows and len(rows) == len(records)

    def totals() -> tuple[object, ...]:
        return (store.query("SELECT count(), sum(cost_usd) FROM llm_spans").result_rows[0]
                + store.query("SELECT sum(requests), sum(cost_usd) FROM llm_spend_hourly").result_rows[0]
                + store.query("SELECT sum(requests) FROM llm_spend_daily").result_rows[0])

    once = totals()
    assert once[0] == once[2] == once[4] == len(records)
    sink.write(records, "tok-arrow")
    assert totals() == once
    sink.write(records, "tok-other")
    assert totals()[0] == 2 * len(records)


def test_the_chdb_arrow_insert_holds_no_copy_of_the_batch_and_leaves_no_file(
        store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While chDB reads the batch, the Arrow table it was written from is freed (its buffers are back in
    pyarrow's pool) and the batch exists only in its temporary file, removed afterwards, also when the insert
    fails; a refused batch fails with a permanent error (the writer parks it)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    records = [record(i) for i in range(2_000)]
    size = records_to_arrow(records).nbytes
    seen: list[tuple[int, list[Path]]] = []
    command = store.command

    def spy(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "FROM INFILE" in sql:
            seen.append((pa.total_allocated_bytes(), sorted(tmp_path.iterdir())))
        return command(sql, *args, **kwargs)

    monkeypatch.setattr(store, "command", spy)
    before = pa.total_allocated_bytes()
    ClickHouseSink(store).write(records, "tok")
    ((allocated, files),) = seen
    assert allocated - before < size // 4, "the batch's Arrow table is alive during chDB's insert"
    assert [f.suffix for f in files] == [".arrow"] and list(tmp_path.iterdir()) == []
    assert store.query("SELECT count() FROM llm_spans").result_rows[0][0] == len(records)
    store.command("CREATE TABLE narrow (trace_id String) ENGINE = MergeTree ORDER BY trace_id")
    with pytest.raises(Exception) as refused:
        ClickHouseSink(store, table="narrow").write(records, "tok-2")
    assert not is_retriable(refused.value) and list(tmp_path.iterdir()) == []


def test_chdb_purges_its_allocator_after_each_insert_and_a_refusal_keeps_the_batch(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After each insert into chDB the sink hands the memory chDB freed back (SYSTEM JEMALLOC PURGE); a store
    that refuses the statement still has the batch written, and is not asked again."""
    calls: list[str] = []
    command = store.command

    def spy(sql: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(sql.split(" (")[0])
        if sql == "SYSTEM JEMALLOC PURGE" and refuse:
            raise RuntimeError("Code: 497. DB::Exception: Not enough privileges")
        return command(sql, *args, **kwargs)

    refuse = False
    monkeypatch.setattr(store, "command", spy)
    sink = ClickHouseSink(store)
    sink.write(sample(), "tok-1")
    sink.write(batch_of(sample()), "tok-2")  # the protobuf insert too
    assert calls == ["INSERT INTO llm_spans", "SYSTEM JEMALLOC PURGE"] * 2
    refuse = True
    calls.clear()
    sink.write([record(i) for i in range(100, 110)], "tok-3")
    sink.write([record(i) for i in range(110, 120)], "tok-4")
    assert calls == ["INSERT INTO llm_spans", "SYSTEM JEMALLOC PURGE", "INSERT INTO llm_spans"]
    assert store.query("SELECT count() FROM llm_spans").result_rows[0][0] == 2 * len(sample()) + 20


def test_protobuf_insert_stores_the_rows_arrow_stores(store: Any) -> None:
    """Every column equal to the Arrow insert of the same batch: exact decimals, NULL vs 0 costs, maps, times."""
    batch = batch_of(sample())
    sink = ClickHouseSink(store)
    assert sink.protobuf_route == "file"
    sink.write(batch, "tok-pb")
    assert sink.protobuf_route == "file"  # it worked: no fall back
    store.command("CREATE TABLE arrow_copy AS llm_spans")
    arrow = ClickHouseSink(store, table="arrow_copy")
    arrow.protobuf_route = ""
    arrow.write(batch, "tok-pb")  # the same token: insert_token is equal too
    rows = store.query(ROWS.format("llm_spans")).result_rows
    assert rows == store.query(ROWS.format("arrow_copy")).result_rows and len(rows) == len(batch)
    costs = dict(store.query("SELECT span_id, cost_usd FROM llm_spans").result_rows)
    assert costs[f"{21:016x}"] == Decimal("9223372.036854775807")
    assert costs[f"{20:016x}"] is None and costs[f"{22:016x}"] == Decimal(0)


def test_protobuf_insert_is_deduplicated_in_the_table_and_its_rollups(store: Any) -> None:
    """A redelivered batch (same token) is a no-op in llm_spans and the hourly/daily rollups; a new token is not."""
    batch = batch_of(sample())
    sink = ClickHouseSink(store)

    def totals() -> tuple[object, ...]:
        return (store.query("SELECT count(), sum(cost_usd) FROM llm_spans").result_rows[0]
                + store.query("SELECT sum(requests), sum(cost_usd) FROM llm_spend_hourly").result_rows[0]
                + store.query("SELECT sum(requests) FROM llm_spend_daily").result_rows[0])

    sink.write(batch, "topic/0/0-9/abc")
    once = totals()
    assert once[0] == len(batch) and once[2] == len(batch) and once[4] == len(batch)
    sink.write(batch, "topic/0/0-9/abc")
    assert totals() == once
    sink.write(batch, "topic/0/10-19/def")
    assert totals()[0] == 2 * len(batch)


def test_protobuf_insert_leaves_no_file_but_the_schema(store: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """chDB reads the batch from a temporary file, removed after the insert, and the schema from one file named
    by its content (not from a string, which chDB would cache in ./__cache__ of the process)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)
    sink = ClickHouseSink(store)
    for token in ("a", "b"):
        sink.write(batch_of(sample()), token)
    (schema,) = (tmp_path / "tmp").iterdir()
    assert schema.name.startswith("lct-schema-") and schema.read_text() == kafka_codec.PROTOBUF_SCHEMA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no __cache__ in the working directory
    assert sink.protobuf_route == "file"


class HttpClient:
    """Stands in for clickhouse-connect's HTTP client (the sink picks the route by class name)."""

    def __init__(self, command_error: Exception | None = None, arrow_error: Exception | None = None) -> None:
        self.command_error = command_error
        self.arrow_error = arrow_error
        self.commands: list[tuple[str, bytes, dict[str, Any]]] = []
        self.arrow: list[tuple[str, Any, dict[str, Any]]] = []

    def command(self, sql: str, data: bytes = b"", settings: dict[str, Any] | None = None) -> None:
        self.commands.append((sql, data, settings or {}))
        if self.command_error is not None:
            raise self.command_error

    def insert_arrow(self, table: str, data: Any, settings: dict[str, Any] | None = None) -> None:
        self.arrow.append((table, data, settings or {}))
        if self.arrow_error is not None:
            raise self.arrow_error


def test_http_route_sends_the_protobuf_as_the_body_of_an_input_insert() -> None:
    """Over HTTP: INSERT ... SELECT ... FROM input(...) FORMAT ProtobufList, the envelope as the body, the schema
    and the dedup token as settings."""
    batch = batch_of(sample())
    client = HttpClient()
    ClickHouseSink(client).write(batch, "tok")
    ((sql, data, settings),) = client.commands
    assert "FROM input(" in sql and sql.endswith("FORMAT ProtobufList") and "INSERT INTO llm_spans (" in sql
    assert data == batch.protobuf_list()
    assert settings["insert_deduplication_token"] == "tok" and settings["format_schema"] == kafka_codec.PROTOBUF_SCHEMA
    assert settings["format_schema_source"] == "string" and settings["format_schema_message_name"] == "SpanRecordV1"
    assert not client.arrow


def test_a_store_that_refuses_the_protobuf_insert_gets_arrow_from_then_on() -> None:
    """A server without format_schema_source (Code: 115) gets the same batch as Arrow with the same token, and
    Arrow only afterwards."""
    batch = batch_of(sample())
    client = HttpClient(command_error=RuntimeError("Code: 115. DB::Exception: Unknown setting format_schema_source"))
    sink = ClickHouseSink(client)
    sink.write(batch, "tok-1")
    assert len(client.commands) == 1 and sink.protobuf_route == ""
    ((table, data, settings),) = client.arrow
    assert table == "llm_spans" and settings["insert_deduplication_token"] == "tok-1"
    assert data.drop_columns(["insert_token"]).equals(batch.to_arrow())
    assert data.column("insert_token").to_pylist() == [token_hash("tok-1")] * len(batch)  # each row names its insert
    sink.write(batch, "tok-2")
    assert len(client.commands) == 1 and len(client.arrow) == 2


def test_a_failed_protobuf_insert_goes_as_arrow_and_arrow_errors_decide() -> None:
    """A failure that says nothing about the statement (a dropped connection) sends that batch as Arrow and keeps
    the protobuf route; when Arrow fails too, its error is what the batch writer sees (retry or park)."""
    batch = batch_of(sample())
    client = HttpClient(command_error=ConnectionError("reset by peer"))
    sink = ClickHouseSink(client)
    sink.write(batch, "tok")
    assert sink.protobuf_route == "input" and len(client.arrow) == 1
    client.arrow_error = ValueError("Code: 53. Type mismatch")
    with pytest.raises(ValueError, match="Type mismatch"):
        sink.write(batch, "tok")
    assert sink.protobuf_route == "input"


def test_records_go_as_arrow_whatever_the_route() -> None:
    """SpanRecords (the in-process pipeline) are inserted as Arrow on the protobuf route too, and wire records
    on a store without that route give the same table."""
    client = HttpClient()
    sink = ClickHouseSink(client)
    records = sample()
    sink.write(records, "")
    sink.protobuf_route = ""
    sink.write(batch_of(records), "")
    assert not client.commands and [a[1].num_rows for a in client.arrow] == [len(records)] * 2
    plain, wire = client.arrow[0][1], client.arrow[1][1]
    maps = ["attributes", "resource_attributes"]  # protobuf maps keep no order: compared as dicts
    assert plain.drop_columns(maps).equals(wire.drop_columns(maps))
    for name in maps:
        assert [dict(m) for m in plain.column(name).to_pylist()] == [dict(m) for m in wire.column(name).to_pylist()]


def test_the_protobuf_insert_reads_every_field_a_row_is_made_of() -> None:
    """Every SpanColumns field (what the Arrow insert stores) is read from the protobuf and put in a column, and
    every field read exists in SpanRecordV1 under that name: a field added to the record cannot be forgotten."""
    from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordV1
    from llm_cost_tracker.sinks.clickhouse import _PROTOBUF_INPUT
    from llm_cost_tracker.storage.rows import SPAN_COLUMNS

    read = [name for name, _, _ in _PROTOBUF_INPUT]
    assert sorted(read) == sorted(SPAN_COLUMNS)
    assert set(read) <= {f.name for f in SpanRecordV1.DESCRIPTOR.fields}
