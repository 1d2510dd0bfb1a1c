"""SpanRecord <-> Kafka message value (``SpanRecordV1``, see ``proto/.../kafka_record_v1.proto``).

Also the flush marker: an empty value with the ``lct-marker`` header, which consumers write to a
partition to close a batch at a durable, replayable offset (docs/kafka.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from llm_cost_tracker.queue.kafka_record_v1_pb2 import SpanRecordV1
from llm_cost_tracker.types import SpanRecord, TokenUsage

# SpanRecord.cache_savings_pusd is being added by the storage work (issue 5); carry it once it exists.
_HAS_SAVINGS = "cache_savings_pusd" in SpanRecord.__dataclass_fields__

MARKER_HEADER = "lct-marker"
MARKER_HEADERS: list[tuple[str, bytes]] = [(MARKER_HEADER, b"1")]
ERROR_HEADER = "lct-error"
"""DLQ messages carry the reason they could not be stored in this header (UTF-8)."""
SOURCE_HEADER = "lct-source"
"""DLQ messages name where they came from: ``topic/partition/offset``."""

__all__ = ["ERROR_HEADER", "MARKER_HEADER", "MARKER_HEADERS", "SOURCE_HEADER", "RecordDecodeError",
           "decode", "encode", "is_marker"]


class RecordDecodeError(ValueError):
    """A message value that is not a usable SpanRecordV1."""


def encode(record: SpanRecord) -> bytes:
    """The SpanRecordV1 encoding of ``record``."""
    u = record.usage
    msg = SpanRecordV1(
        trace_id=record.trace_id, span_id=record.span_id, parent_span_id=record.parent_span_id,
        start_time_ns=record.start_time_ns, duration_ns=record.duration_ns, service_name=record.service_name,
        span_name=record.span_name, status_code=record.status_code,
        resource_attributes=record.resource_attributes, attributes=record.attributes, tenant=record.tenant,
        dialect=record.dialect, operation=record.operation, provider=record.provider,
        request_model=record.request_model, response_model=record.response_model,
        input_tokens=u.input_tokens, output_tokens=u.output_tokens, cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens, reasoning_tokens=u.reasoning_tokens,
        pricing_model=record.pricing_model, price_version=record.price_version,
        pricing_status=record.pricing_status,
    )
    if record.cost_pusd is not None:
        msg.cost_pusd = record.cost_pusd
    if record.reported_cost_pusd is not None:
        msg.reported_cost_pusd = record.reported_cost_pusd
    savings = getattr(record, "cache_savings_pusd", None)
    if savings is not None:
        msg.cache_savings_pusd = savings
    return msg.SerializeToString()


def decode(value: bytes | None) -> SpanRecord:
    """The record encoded in ``value``.

    Raises:
        RecordDecodeError: not a SpanRecordV1, or one without the fields every row needs.
    """
    if not value:
        raise RecordDecodeError("empty message value (and not a flush marker)")
    msg = SpanRecordV1()
    try:
        msg.ParseFromString(value)
    except DecodeError as exc:
        raise RecordDecodeError(f"not a SpanRecordV1 ({len(value)} bytes): {exc}") from exc
    if not msg.trace_id or not msg.span_id:
        raise RecordDecodeError(f"SpanRecordV1 without trace_id/span_id ({len(value)} bytes)")
    if msg.duration_ns < 0 or msg.start_time_ns < 0:
        raise RecordDecodeError("SpanRecordV1 with a negative start time or duration")
    record = SpanRecord(
        trace_id=msg.trace_id, span_id=msg.span_id, parent_span_id=msg.parent_span_id,
        start_time_ns=msg.start_time_ns, duration_ns=msg.duration_ns, service_name=msg.service_name,
        span_name=msg.span_name, status_code=msg.status_code,
        resource_attributes=dict(msg.resource_attributes), attributes=dict(msg.attributes), tenant=msg.tenant,
        dialect=msg.dialect, operation=msg.operation, provider=msg.provider, request_model=msg.request_model,
        response_model=msg.response_model,
        usage=TokenUsage(msg.input_tokens, msg.output_tokens, msg.cache_read_tokens, msg.cache_write_tokens,
                         msg.reasoning_tokens),
        pricing_model=msg.pricing_model, price_version=msg.price_version,
        cost_pusd=msg.cost_pusd if msg.HasField("cost_pusd") else None,
        pricing_status=msg.pricing_status,
        reported_cost_pusd=msg.reported_cost_pusd if msg.HasField("reported_cost_pusd") else None,
    )
    if _HAS_SAVINGS and msg.HasField("cache_savings_pusd"):
        record.cache_savings_pusd = msg.cache_savings_pusd  # type: ignore[attr-defined,unused-ignore]
    return record


def is_marker(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether a message is a flush marker (empty value, ``lct-marker`` header)."""
    if value:
        return False
    return any(key == MARKER_HEADER for key, _ in headers)
