"""The Kafka records' attribute maps written from a request's attribute columns: the same messages as upb's
encoding of each record's dict, for exactly the records the columns still describe."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from llm_cost_tracker.config import Settings
from llm_cost_tracker.frontend import default_transforms, load_catalog
from llm_cost_tracker.metrics import Metrics
from llm_cost_tracker.queue import kafka as kafka_queue
from llm_cost_tracker.queue import kafka_attributes, kafka_codec
from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordBatchV1, SpanRecordV1
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.sources.otlp_decode import DecodeLimits, decode_spans, parse_request
from llm_cost_tracker.sources.otlp_scan import scan_request
from llm_cost_tracker.testing import (
    SECRETS,
    genai_attributes,
    key_values,
    make_request,
    make_span,
    span_record,
)
from llm_cost_tracker.transforms.chain import Chain
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.types import SpanRecord
from tests.conftest import wire_scanned

LONG = "x" * 200  # a value whose entry length takes two varint bytes
HUGE = "ü" * 10_000  # 20,000 bytes of UTF-8: three varint bytes for its length and its entry's


def payload(spans: int = 48) -> bytes:
    """A request whose spans cover what an attribute map can hold: non-ASCII keys and values, empty values,
    long values, values that are not strings, keys repeated on the wire, no attributes at all."""
    out = []
    for i in range(spans):
        attributes: dict[str, object] = {**genai_attributes(input_tokens=100 + i), "gen_ai.response.id": f"r-{i}",
                                         "user.id": f"user-{i % 5}"}
        if i % 7 == 0:
            attributes |= {"ключ.ü": "✓ 𝄞 naïve", "emoji": "🙂" * (i + 1)}
        if i % 5 == 0:
            attributes |= {"empty": "", "flag": True, "ratio": 0.25, "tags": ["a", "b"]}
        if i % 11 == 0:
            attributes |= {"long": LONG, "huge": HUGE}
        if i == 3:
            attributes = {}
        span = make_span(attributes, trace_id=os.urandom(16), span_id=(i + 1).to_bytes(8, "big"))
        if i % 6 == 1:  # the key repeated on the wire: the dict keeps the last value, and has fewer keys than slots
            span.attributes.extend(key_values({"user.id": "repeated", "gen_ai.request.model": "again"}))
        out.append(span)
    return make_request(out, {"service.name": "svc", "tenant.id": "acme", "ü": "✓"}).SerializeToString()


def assert_same_messages(values: list[bytes], records: list[SpanRecord]) -> None:
    """Each value parses to the message upb makes of its record (maps compared as maps) and decodes to it."""
    assert [SpanRecordV1.FromString(v) for v in values] == [SpanRecordV1.FromString(kafka_codec.encode(r))
                                                            for r in records]
    assert [kafka_codec.decode(v) for v in values] == records


def test_described_records_get_their_maps_from_the_columns() -> None:
    """Records whose dict the columns describe get its map from them; a replaced (redacted) dict, a grown one,
    one with a key repeated on the wire and a record from elsewhere keep upb's: the same messages either way."""
    records, columns = wire_scanned(payload())
    records[2].attributes = {**records[2].attributes, "user.id": "[REDACTED]"}  # what redaction does to a dict
    records[4].attributes["llm_cost_tracker.quirks"] = "added"  # a stage adding a key: the dict grew
    records.append(span_record(attributes={"other": "request"}))
    fields = kafka_attributes.attribute_fields(records, columns)
    repeated = {i for i in range(48) if i % 6 == 1}
    assert [i for i, f in enumerate(fields) if f is None] == sorted({2, 4, 48} | repeated)
    for record, field in zip(records, fields, strict=True):
        if field is not None:  # the field alone parses to the record's map
            assert dict(SpanRecordV1.FromString(field).attributes) == record.attributes
    assert records[0].attributes["ключ.ü"] == "✓ 𝄞 naïve" and records[0].attributes["huge"] == HUGE
    assert records[5].attributes["empty"] == "" and records[3].attributes == {}
    assert records[1].attributes["user.id"] == "repeated"
    values = kafka_codec.encode_many(records, columns)
    assert_same_messages(values, records)
    assert kafka_codec.encode_many(records, columns) == values  # deterministic
    other_records, _ = wire_scanned(payload(8))
    assert all(f is None for f in kafka_attributes.attribute_fields(other_records, columns))  # another request's
    assert_same_messages(kafka_codec.encode_many(other_records, columns), other_records)


def test_protobuf_decoded_requests_and_an_unusable_loop_keep_the_dicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request protobuf decoded has no columns; and where the compiled loop failed to load, every map is
    upb's. The messages are the same."""
    data = payload(12)
    decoded = decode_spans(parse_request(data), DecodeLimits())
    assert decoded.columns is None
    assert_same_messages(kafka_codec.encode_many(decoded.records, decoded.columns), decoded.records)
    records, columns = wire_scanned(data)
    monkeypatch.setattr(kafka_attributes.STATE, "error", "no LLVM here")
    assert all(f is None for f in kafka_attributes.attribute_fields(records, columns))
    assert_same_messages(kafka_codec.encode_many(records, columns), records)


def test_after_the_receiver_stages(tmp_path: Path) -> None:
    """Through the receiver's real stages (redaction replaces the dicts of spans that carry a secret, the price
    stage may add a key): the same messages, and the records left untouched come from the columns."""
    data = payload()
    limits = DecodeLimits()
    scan = scan_request(data, limits)
    assert scan is not None
    secret = make_request([make_span({**genai_attributes(), "note": f"key {SECRETS['openai_key']}"},
                                     trace_id=os.urandom(16)) for _ in range(3)]).SerializeToString()
    records, columns = wire_scanned(data)
    settings = Settings(data_dir=str(tmp_path))
    metrics = Metrics()
    catalog = load_catalog(settings.pricing, settings.store)
    stages = default_transforms(lambda: catalog.current, metrics, Redact.from_settings(settings, metrics))
    for extra_records, _ in [wire_scanned(secret)]:
        records.extend(extra_records)  # spans with a secret (not described: another request's)
    noted = {records[i].span_id for i in (0, 10)}
    for i in (0, 10):
        records[i].attributes["note"] = f"key {SECRETS['openai_key']}"  # grown, then replaced by redaction
    records = Chain(stages).process(records, lambda reason, message: None, columns=columns).records
    assert all("sk-proj" not in v for r in records for v in r.attributes.values())
    fields = kafka_attributes.attribute_fields(records, columns)
    assert {r.span_id for r, f in zip(records, fields, strict=True) if f is None} >= noted
    assert sum(f is not None for f in fields) >= 30
    assert_same_messages(kafka_codec.encode_many(records, columns), records)


def test_a_request_split_across_partitions_and_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher's messages of one request (several partitions, and messages cut at the size limit) hold
    the same records in the same order with the columns as without."""
    records, columns = wire_scanned(payload())
    monkeypatch.setattr(kafka_queue, "_MAX_MESSAGE_BYTES", 4096)
    with_columns = kafka_queue.KafkaPublisher._messages(records, 5, columns)
    without = kafka_queue.KafkaPublisher._messages(records, 5)
    assert [(p, n) for p, n, _ in with_columns] == [(p, n) for p, n, _ in without]
    assert len({p for p, _, _ in with_columns}) > 1 and len(with_columns) > len({p for p, _, _ in with_columns})
    for (_, n, a), (_, _, b) in zip(with_columns, without, strict=True):
        assert SpanRecordBatchV1.FromString(a) == SpanRecordBatchV1.FromString(b)
        assert kafka_codec.decode_message(a, kafka_codec.batch_headers(n)) == kafka_codec.decode_message(
            b, kafka_codec.batch_headers(n))
    assert sum(n for _, n, _ in with_columns) == len(records)


def test_clickhouse_reads_the_maps_as_arrow_stores_them(store: Any) -> None:
    """ClickHouse's ProtobufList reader (the consumer's insert) stores the maps written from the columns as the
    Arrow insert stores the records' dicts: same entries, none repeated (a key repeated on the wire included)."""
    records, columns = wire_scanned(payload())
    records[2].attributes = {**records[2].attributes, "user.id": "[REDACTED]"}
    records[4].attributes["llm_cost_tracker.quirks"] = "added"
    batch = kafka_codec.WireBatch()
    batch.add(kafka_codec.encode_batch(kafka_codec.encode_many(records, columns)),
              kafka_codec.batch_headers(len(records)))
    sink = ClickHouseSink(store)
    sink.write(batch, "tok-columns")
    assert sink.protobuf_route == "file"  # the ProtobufList insert, not the Arrow fall back
    store.command("CREATE TABLE arrow_copy AS llm_spans")
    ClickHouseSink(store, table="arrow_copy").write(records, "tok-columns")  # SpanRecords: the Arrow insert of the dicts
    query = "SELECT span_id, mapSort(attributes), length(mapKeys(attributes)) FROM {} ORDER BY span_id"
    rows = store.query(query.format("llm_spans")).result_rows
    assert rows == store.query(query.format("arrow_copy")).result_rows and len(rows) == len(records)
    assert all(n == len(r.attributes) for r, (_, _, n) in zip(sorted(records, key=lambda r: r.span_id), rows,
                                                                strict=True))


def test_encode_batch_is_upbs_batch_at_every_length_prefix_size() -> None:
    """encode_batch's framing (cached per length) is byte for byte what upb writes for the batch, at lengths on
    both sides of each varint size and above the cached ones, and twice in a row (from the cache)."""
    values = [SpanRecordV1(trace_id="a" * n).SerializeToString() for n in
              (0, 1, 124, 125, 126, 127, 128, 200, 16378, 16379, 16380, 16381, 20_000, 2_100_000)]
    values.append(b"")
    expected = SpanRecordBatchV1(records=[SpanRecordV1.FromString(v) for v in values]).SerializeToString()
    assert kafka_codec.encode_batch(values) == expected == kafka_codec.encode_batch(values)
    assert kafka_codec.encode_batch([]) == b""
