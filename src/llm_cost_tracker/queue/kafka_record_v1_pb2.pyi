# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpanRecordV1(_message.Message):
    __slots__ = ("trace_id", "span_id", "parent_span_id", "start_time_ns", "duration_ns", "service_name", "span_name", "status_code", "resource_attributes", "attributes", "tenant", "dialect", "operation", "provider", "request_model", "response_model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "pricing_model", "price_version", "cost_pusd", "pricing_status", "reported_cost_pusd", "cache_savings_pusd")
    class ResourceAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    DURATION_NS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    SPAN_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DIALECT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_MODEL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PRICING_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    COST_PUSD_FIELD_NUMBER: _ClassVar[int]
    PRICING_STATUS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_COST_PUSD_FIELD_NUMBER: _ClassVar[int]
    CACHE_SAVINGS_PUSD_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    span_id: str
    parent_span_id: str
    start_time_ns: int
    duration_ns: int
    service_name: str
    span_name: str
    status_code: int
    resource_attributes: _containers.ScalarMap[str, str]
    attributes: _containers.ScalarMap[str, str]
    tenant: str
    dialect: str
    operation: str
    provider: str
    request_model: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    pricing_model: str
    price_version: str
    cost_pusd: int
    pricing_status: str
    reported_cost_pusd: int
    cache_savings_pusd: int
    def __init__(self, trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., parent_span_id: _Optional[str] = ..., start_time_ns: _Optional[int] = ..., duration_ns: _Optional[int] = ..., service_name: _Optional[str] = ..., span_name: _Optional[str] = ..., status_code: _Optional[int] = ..., resource_attributes: _Optional[_Mapping[str, str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ..., dialect: _Optional[str] = ..., operation: _Optional[str] = ..., provider: _Optional[str] = ..., request_model: _Optional[str] = ..., response_model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_read_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., pricing_model: _Optional[str] = ..., price_version: _Optional[str] = ..., cost_pusd: _Optional[int] = ..., pricing_status: _Optional[str] = ..., reported_cost_pusd: _Optional[int] = ..., cache_savings_pusd: _Optional[int] = ...) -> None: ...

class SpanRecordBatchV1(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[SpanRecordV1]
    def __init__(self, records: _Optional[_Iterable[_Union[SpanRecordV1, _Mapping]]] = ...) -> None: ...
