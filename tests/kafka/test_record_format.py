"""The Kafka record format: generated code is current, and every row field survives the round trip."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from llm_cost_tracker.queue import kafka_codec
from llm_cost_tracker.queue.kafka_client import partitions_for_keys
from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordBatchV1, SpanRecordV1
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import RECEIVER_ONLY_FIELDS, SpanRecord, TokenUsage

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto" / "llm_cost_tracker" / "queue" / "kafka_record_v1.proto"


def full_record(**changes: object) -> SpanRecord:
    return dataclasses.replace(span_record(
        trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", parent_span_id="00f067aa0ba902b7",
        start_time_ns=1_700_000_000_123_456_789, duration_ns=1_500_000_000, service_name="svc", span_name="chat",
        status_code=2, resource_attributes={"service.name": "svc", "tenant.id": "acme"},
        attributes={"gen_ai.request.model": "gpt-4o", "ünïcode": "✓"}, tenant="acme", dialect="genai",
        operation="chat", provider="openai", request_model="gpt-4o", response_model="gpt-4o-2024-08-06",
        usage=TokenUsage(1000, 200, 300, 50, 80), pricing_model="gpt-4o-2024-08-06", price_version="2024-08-06",
        cost_pusd=4_250_000_000, pricing_status="priced", reported_cost_pusd=0,
    ), **changes)


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None,
                    reason="grpcio-tools not installed (needed only to compile the .proto)")
def test_generated_code_is_current() -> None:
    """The committed kafka_record_v1_pb2 describes exactly the schema in proto/ (proto/generate.py --check)."""
    out = subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--check"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_proto_field_is_documented_and_matches_the_message() -> None:
    """Each field in the .proto has a comment, and the generated message has the same fields and numbers."""
    import re

    lines = PROTO.read_text().splitlines()
    declared: dict[str, dict[str, int]] = {}
    message = ""
    for i, line in enumerate(lines):
        start = re.match(r"message\s+(\w+)\s*\{", line)
        if start:
            message = start.group(1)
            declared[message] = {}
            assert lines[i - 1].strip().startswith("//"), f"message {message} is not documented"
        match = re.match(r"\s*(?:optional\s+|repeated\s+)?[\w<>, ]+\s+(\w+)\s*=\s*(\d+);", line)
        if match:
            declared[message][match.group(1)] = int(match.group(2))
            assert lines[i - 1].strip().startswith("//"), f"field {match.group(1)} is not documented"
    generated = {m.DESCRIPTOR.name: {f.name: f.number for f in m.DESCRIPTOR.fields}
                 for m in (SpanRecordV1, SpanRecordBatchV1)}
    assert declared == generated


def test_every_span_record_field_is_carried() -> None:
    """SpanRecord's fields (usage flattened) all have a field in SpanRecordV1: nothing a row needs is lost."""
    names = {f.name for f in SpanRecordV1.DESCRIPTOR.fields}
    # TokenUsage.detail (audio/image tokens, seconds, characters...) is priced before publishing and has no row
    # column; its source attributes travel in `attributes`
    wanted = (set(SpanRecord.__dataclass_fields__) - {"usage"} - RECEIVER_ONLY_FIELDS) | (
        set(TokenUsage.__dataclass_fields__) - {"detail"})
    assert wanted <= names, wanted - names


@pytest.mark.parametrize("changes", [{}, {"cost_pusd": None, "pricing_status": "unpriced", "pricing_model": "",
                                         "reported_cost_pusd": None}, {"parent_span_id": "", "attributes": {}}])
def test_round_trip_is_exact(changes: dict[str, object]) -> None:
    """decode(encode(r)) == r, including absent costs (None, never zero)."""
    record = full_record(**changes)
    assert kafka_codec.decode(kafka_codec.encode(record)) == record


@pytest.mark.parametrize("value", [b"", b"\xff\xff\xff", b"not a protobuf at all \x00\x01",
                                   SpanRecordV1(trace_id="", span_id="x").SerializeToString()])
def test_garbage_is_a_decode_error(value: bytes) -> None:
    """Empty, malformed and identity-less values raise RecordDecodeError (they go to the DLQ)."""
    with pytest.raises(kafka_codec.RecordDecodeError):
        kafka_codec.decode(value)


def test_batch_round_trip_and_framing() -> None:
    """encode_batch writes exactly SpanRecordBatchV1's encoding; decode_message returns the records in order."""
    records = [full_record(), full_record(span_id="b" * 16, cost_pusd=None, pricing_status="unpriced",
                                          pricing_model="", reported_cost_pusd=None)]
    values = [kafka_codec.encode(r) for r in records]
    batch = kafka_codec.encode_batch(values)
    assert batch == SpanRecordBatchV1(records=[SpanRecordV1.FromString(v) for v in values]).SerializeToString()
    headers = kafka_codec.batch_headers(len(records))
    assert kafka_codec.record_count(headers) == 2
    assert kafka_codec.decode_message(batch, headers) == records
    assert kafka_codec.decode_message(values[0], []) == records[:1]  # a v1.0 single-record message


@pytest.mark.parametrize("value, count", [(b"", 1), (b"\xff\xff\xff", 1), (b"plain garbage \x00", 3),
                                          (SpanRecordBatchV1(records=[SpanRecordV1(trace_id="t", span_id="")])
                                           .SerializeToString(), 1)])
def test_garbage_batch_is_a_decode_error(value: bytes, count: int) -> None:
    """A batch that does not parse, lacks an identity in one record, or disagrees with its header fails whole."""
    with pytest.raises(kafka_codec.RecordDecodeError):
        kafka_codec.decode_message(value, kafka_codec.batch_headers(count))
    one = kafka_codec.encode_batch([kafka_codec.encode(full_record())])
    with pytest.raises(kafka_codec.RecordDecodeError, match="header"):
        kafka_codec.decode_message(one, kafka_codec.batch_headers(2))


def test_column_decoder_matches_record_decoding() -> None:
    """ColumnDecoder (the consumer's path) gives the same records and the same Arrow table as decode, and a bad
    message adds nothing (all or none of its records)."""
    from llm_cost_tracker.storage.rows import records_to_arrow

    records = [full_record(), full_record(span_id="b" * 16, cost_pusd=None, pricing_status="unpriced",
                                          pricing_model="", reported_cost_pusd=None, attributes={})]
    values = [kafka_codec.encode(r) for r in records]
    decoder = kafka_codec.ColumnDecoder()
    decoder.add(kafka_codec.encode_batch(values), kafka_codec.batch_headers(2))
    bad = kafka_codec.encode_batch([values[0], SpanRecordV1(trace_id="t").SerializeToString()])
    with pytest.raises(kafka_codec.RecordDecodeError):
        decoder.add(bad, kafka_codec.batch_headers(2))
    decoder.add(values[0], [])  # a v1.0 single-record message
    columns = decoder.columns()
    assert len(columns) == 3
    assert columns.to_records() == [*records, records[0]]
    decoded = [*kafka_codec.decode_message(kafka_codec.encode_batch(values), kafka_codec.batch_headers(2)),
               kafka_codec.decode(values[0])]  # what the consumer inserted before (map order as protobuf gives it)
    assert columns.to_arrow().equals(records_to_arrow(decoded))
    assert len(kafka_codec.ColumnDecoder().columns()) == 0


def test_markers_are_recognised_only_with_the_header() -> None:
    """A flush marker is an empty value with the lct-marker header; an empty value alone is not one."""
    assert kafka_codec.is_marker(b"", kafka_codec.MARKER_HEADERS)
    assert not kafka_codec.is_marker(b"", [])
    assert not kafka_codec.is_marker(b"x", kafka_codec.MARKER_HEADERS)


def test_partitioner_matches_kafkas_default() -> None:
    """The vectorised murmur2 partitioner equals aiokafka's DefaultPartitioner for hex ids and odd keys."""
    import os

    from aiokafka.partitioner import DefaultPartitioner

    keys = [os.urandom(16).hex().encode() for _ in range(2000)] + [b"", b"abc", os.urandom(40)]
    expected = [DefaultPartitioner()(k, list(range(7)), list(range(7))) for k in keys]
    assert partitions_for_keys(keys, 7).tolist() == expected


def test_publisher_messages_keep_traces_on_kafkas_partition_and_split_large_groups() -> None:
    """One message per (request, partition): every record sits on the partition Kafka's default partitioner
    gives its trace id, request order is kept per partition, and a big group is split under the size limit."""
    import os

    from aiokafka.partitioner import DefaultPartitioner

    from llm_cost_tracker.queue import kafka as kafka_queue

    traces = [os.urandom(16).hex() for _ in range(40)]
    records = [full_record(trace_id=traces[i % 40], span_id=f"{i:016x}", attributes={"big": "x" * 2000})
               for i in range(600)]
    messages = kafka_queue.KafkaPublisher._messages(records, 5)
    seen: list[SpanRecord] = []
    for partition, count, value in messages:
        decoded = kafka_codec.decode_message(value, kafka_codec.batch_headers(count))
        assert len(decoded) == count and len(value) <= kafka_queue._MAX_MESSAGE_BYTES + 8
        for r in decoded:
            assert DefaultPartitioner()(r.trace_id.encode(), list(range(5)), list(range(5))) == partition
        seen.extend(decoded)
    assert sorted(r.span_id for r in seen) == sorted(r.span_id for r in records)
    assert len(messages) > 5  # 600 x ~2 KB over 5 partitions needs splitting at 256 KiB
    by_partition: dict[int, list[str]] = {}
    for partition, count, value in messages:
        by_partition.setdefault(partition, []).extend(
            r.span_id for r in kafka_codec.decode_message(value, kafka_codec.batch_headers(count)))
    for ids in by_partition.values():
        assert ids == sorted(ids)  # span ids were issued in request order


def test_encode_many_is_encode_with_the_resource_fields_once() -> None:
    """encode_many gives the same SpanRecordV1 as encode for each record, for records sharing a resource dict
    (encoded once) and for records whose tenant or service differs within one resource."""
    shared = {"service.name": "svc", "tenant.id": "acme"}
    records = [full_record(span_id=f"{i:016x}", resource_attributes=shared) for i in range(3)]
    records.append(full_record(span_id="c" * 16, resource_attributes=shared, tenant="other"))
    records.append(full_record(span_id="d" * 16, resource_attributes={}, service_name="", tenant="", cost_pusd=None,
                               reported_cost_pusd=None, pricing_status="unpriced", cache_savings_pusd=None))
    records.append(full_record(span_id="e" * 16, cost_pusd=0, cache_savings_pusd=-7, attributes={}))
    values = kafka_codec.encode_many(records)
    assert [SpanRecordV1.FromString(v) for v in values] == [SpanRecordV1.FromString(kafka_codec.encode(r))
                                                            for r in records]
    assert [kafka_codec.decode(v) for v in values] == records


def test_validated_records_accepts_what_decode_message_accepts() -> None:
    """The consumer's check (no SpanRecord built) agrees with decode_message: a batch as it is, a v1.0 single
    record framed as a one-record batch, and the same garbage refused; a status code over 255 is refused too."""
    records = [full_record(), full_record(span_id="b" * 16, cost_pusd=None, pricing_status="unpriced")]
    batch = kafka_codec.encode_batch([kafka_codec.encode(r) for r in records])
    assert kafka_codec.validated_records(batch, kafka_codec.batch_headers(2)) == (batch, 2)
    single = kafka_codec.encode(records[0])
    wire, count = kafka_codec.validated_records(single, [])
    assert count == 1 and kafka_codec.decode_message(wire, kafka_codec.batch_headers(1)) == records[:1]
    bad_batches = [(b"", 1), (b"\xff\xff\xff", 1), (b"plain garbage \x00", 3), (batch, 3),
                   (SpanRecordBatchV1(records=[SpanRecordV1(trace_id="t", span_id="")]).SerializeToString(), 1),
                   (kafka_codec.encode_batch([kafka_codec.encode(full_record(duration_ns=-1))]), 1)]
    for value, n in bad_batches:
        with pytest.raises(kafka_codec.RecordDecodeError):
            kafka_codec.decode_message(value, kafka_codec.batch_headers(n))
        with pytest.raises(kafka_codec.RecordDecodeError):
            kafka_codec.validated_records(value, kafka_codec.batch_headers(n))
    for value in (b"", b"\xff\xff\xff", SpanRecordV1(trace_id="", span_id="x").SerializeToString()):
        with pytest.raises(kafka_codec.RecordDecodeError):
            kafka_codec.validated_records(value, [])
    with pytest.raises(kafka_codec.RecordDecodeError, match="status_code"):
        kafka_codec.validated_records(kafka_codec.encode(full_record(status_code=256)), [])


def test_wire_batch_holds_messages_whole_and_decodes_like_the_records() -> None:
    """WireBatch adds a message whole or not at all; its records, columns and Arrow table are those of the
    messages, and its ProtobufList input is one length-delimited SpanRecordBatchV1."""
    from llm_cost_tracker.storage.rows import records_to_arrow

    records = [full_record(), full_record(span_id="b" * 16, cost_pusd=None, pricing_status="unpriced",
                                          pricing_model="", reported_cost_pusd=None, attributes={})]
    values = kafka_codec.encode_many(records)
    batch = kafka_codec.WireBatch()
    batch.add(kafka_codec.encode_batch(values), kafka_codec.batch_headers(2))
    with pytest.raises(kafka_codec.RecordDecodeError):
        batch.add(kafka_codec.encode_batch([values[0], SpanRecordV1(trace_id="t").SerializeToString()]),
                  kafka_codec.batch_headers(2))
    batch.add(kafka_codec.encode(records[0]), [])  # a v1.0 single-record message
    assert len(batch) == 3 and len(batch.chunks) == 2
    assert batch.to_records() == list(batch) == [*records, records[0]]
    assert batch.columns().to_records() == batch.to_records()
    assert batch.to_arrow().equals(records_to_arrow(batch.to_records()))
    envelope = batch.protobuf_list()
    length, offset = 0, 0
    for shift in range(0, 64, 7):  # the varint length prefix
        byte = envelope[offset]
        length |= (byte & 0x7F) << shift
        offset += 1
        if byte < 0x80:
            break
    assert length == len(envelope) - offset
    assert len(SpanRecordBatchV1.FromString(envelope[offset:]).records) == 3
    assert batch == kafka_codec.WireBatch(list(batch.chunks), 3) and batch != kafka_codec.WireBatch()
    assert len(kafka_codec.WireBatch()) == 0 and kafka_codec.WireBatch().to_records() == []


def test_protobuf_schema_describes_span_record_v1() -> None:
    """The schema text handed to ClickHouse compiles to the same message as the generated code (fields, numbers,
    types, presence), so ClickHouse reads every field the way protobuf does."""
    grpc_tools = pytest.importorskip("grpc_tools.protoc")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "schema.proto").write_text(kafka_codec.PROTOBUF_SCHEMA)
        assert grpc_tools.main(["protoc", f"-I{tmp}", f"--descriptor_set_out={tmp}/out.pb", "schema.proto"]) == 0
        from google.protobuf import descriptor_pb2

        compiled = descriptor_pb2.FileDescriptorSet.FromString(Path(tmp, "out.pb").read_bytes()).file[0].message_type[0]
    original = descriptor_pb2.DescriptorProto()
    SpanRecordV1.DESCRIPTOR.CopyToProto(original)
    def shape(m: descriptor_pb2.DescriptorProto) -> list[tuple[object, ...]]:
        return sorted((f.name, f.number, f.type, f.label, f.proto3_optional) for f in m.field)
    assert compiled.name == original.name and shape(compiled) == shape(original)
