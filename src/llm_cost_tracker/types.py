"""Records that flow between pipeline stages, and the contracts stages implement.

Every stage knows only the record it receives and the interface it hands on: a source turns wire
payloads into :class:`SpanRecord` objects, transforms fill them in, a queue carries them, a sink
stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from operator import attrgetter, is_
from typing import Any, Protocol, runtime_checkable

PICO_PER_USD = 10**12
"""Costs are integers in pico-US-dollars (1e-12 USD): exact, and int64 holds 9.2 million USD."""

PRICED = "priced"
"""``pricing_status`` of a span priced from its usage: ``cost_pusd`` is its cost."""
UNPRICED = "unpriced"
"""The catalog has no price for the span's model (or the span names none): ``cost_pusd`` is None."""
NO_USAGE = "no_usage"
"""The span names a model but reports no token usage (e.g. a stream without ``include_usage``): ``cost_pusd``
is None, never a silent $0."""
DUPLICATE = "duplicate"
"""Another span of the same provider call carries the cost (attribute ``llm_cost_tracker.duplicate_of``
names it): ``cost_pusd`` is None and totals, metrics and budgets leave the span out."""


@dataclass(frozen=True, slots=True)
class UsageDetail:
    """Usage beyond text tokens: audio and image tokens, and units that are not tokens.

    Audio and image token counts are subsets (of input or output tokens, like cached tokens). The rest
    are other units: media duration in milliseconds (priced per second), characters, images and
    web-search queries. Kept apart from :class:`TokenUsage` so that the usual span (text only) builds and
    prices as fast as before: it shares the one :data:`NO_DETAIL` instance.
    """

    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    input_duration_ms: int = 0
    output_duration_ms: int = 0
    input_characters: int = 0
    output_characters: int = 0
    input_images: int = 0
    output_images: int = 0
    search_requests: int = 0


NO_DETAIL = UsageDetail()


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Normalised token counts of one LLM call.

    The dialects disagree on what "input" means; after normalisation (``transforms/usage.py``):

    - ``input_tokens`` is every prompt token, *including* ``cache_read_tokens`` and
      ``cache_write_tokens`` (the OpenTelemetry GenAI convention; OpenAI counts this way, Anthropic's
      API does not and is converted).
    - ``output_tokens`` is every generated token, *including* ``reasoning_tokens``.

    So cached and reasoning tokens are subsets and are never added on top again when pricing.
    ``detail`` carries audio/image tokens and non-token units (:class:`UsageDetail`); the price stage
    also reads them from span attributes (``pricing/_quote.py``, docs/dialects.md).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    detail: UsageDetail = NO_DETAIL

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens billed at the plain input rate."""
        return max(self.input_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)


ZERO_USAGE = TokenUsage()
"""A record's usage until ``usage`` sets it: one shared instance (it is frozen), since building a
TokenUsage per span cost 0.7 us of the 1 us a SpanRecord takes to make."""

_COUNT_SETTERS = tuple(TokenUsage.__dict__[name].__set__ for name in (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "detail"))


def counted_usage(input_tokens: int, output_tokens: int, cache_read_tokens: int, cache_write_tokens: int,
                  reasoning_tokens: int) -> TokenUsage:
    """``TokenUsage(input_tokens, ..., reasoning_tokens)``, without detail, built in ~40% of the time.

    Why: the usage stage makes one per LLM span, and a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (a global look-up and a call each): ~1 us. Setting the slots through
    their descriptors makes the same object (``==``, hash and repr: tests/transforms/test_stage_fast_paths.py)
    in ~0.4 us. Anything that is not on the hot path builds its usage as usual.
    """
    usage = TokenUsage.__new__(TokenUsage)
    set_input, set_output, set_read, set_write, set_reasoning, set_detail = _COUNT_SETTERS
    set_input(usage, input_tokens)
    set_output(usage, output_tokens)
    set_read(usage, cache_read_tokens)
    set_write(usage, cache_write_tokens)
    set_reasoning(usage, reasoning_tokens)
    set_detail(usage, NO_DETAIL)
    return usage


@dataclass(slots=True)
class SpanRecord:
    """One LLM span, as it moves from the receiver to the store.

    Filled in stages: the source sets the identity, timing and raw attributes; ``usage`` sets the
    dialect-normalised fields; ``price`` sets the cost fields.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    start_time_ns: int
    duration_ns: int
    service_name: str
    span_name: str
    status_code: int
    resource_attributes: dict[str, str]
    attributes: dict[str, str]
    tenant: str = ""
    dialect: str = ""
    operation: str = ""
    provider: str = ""
    request_model: str = ""
    response_model: str = ""
    usage: TokenUsage = ZERO_USAGE
    pricing_model: str = ""
    price_version: str = ""
    cost_pusd: int | None = None
    """Cost in pico-USD, or None when the span could not be priced (never a silent zero)."""
    pricing_status: str = "unpriced"
    reported_cost_pusd: int | None = None
    """Cost the producer itself reported (e.g. ``gen_ai.usage.cost``), in pico-USD, if any."""
    cache_savings_pusd: int | None = None
    """What the cache-read tokens would have cost at the input rate minus what they cost, in pico-USD
    (0 without cache reads; None when the span could not be priced)."""
    scope_name: str = ""
    """The instrumentation scope that emitted the span (not stored: producer quirks and call identity
    read it in the receiver)."""


RECEIVER_ONLY_FIELDS = frozenset({"scope_name"})
"""SpanRecord fields read by the receiver's stages only: not stored, not carried by a queue."""


class Drop(Exception):
    """Raised by a transform to drop the record it was given (counted, never silent)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transform(Protocol):
    """A per-record stage: returns the (possibly modified) record or raises :class:`Drop`."""

    def __call__(self, record: SpanRecord) -> SpanRecord: ...


_attributes_of = attrgetter("attributes")


@dataclass(frozen=True, slots=True, eq=False)
class AttributeColumns:
    """A request's span attributes as the wire scan read them: one string per distinct key and value, and
    per attribute (a *slot*, in wire order) the ids of its key and value in those pools.

    Why: the per-record stages read a dict per span, but a stage that asks one question of every value
    (redaction's "may this hold a secret?") can ask it once per distinct value, with the answer taken to
    the slots by array indexing: no Python work per attribute. Only the wire scan makes these
    (``sources/otlp_records``); a request decoded through protobuf has none, and its stages run per record.

    Row ``i`` is the span whose decoded attribute dict is ``dicts[i]``: a stage finds a record's row by that
    dict's identity (``row_of``), which no later change to the list of records can break. A row describes
    the record only while the record still holds that dict with ``sizes[i]`` keys: the stages may add keys
    to it (call identity, quirks, a partial price do) but never change the value of one they did not add,
    and a record whose dict was replaced or grew is simply not described any more.
    """

    keys: list[str]
    """Distinct keys of the request."""
    values: list[str]
    """Distinct values, rendered as the records hold them."""
    key_ids: Any
    """``int32[slots]``: each slot's index in ``keys``."""
    value_ids: Any
    """``int32[slots]``: each slot's index in ``values``."""
    begins: Any
    """``int32[rows]``: each row's first slot (a row's slots are ``begins[i]:ends[i]``)."""
    ends: Any
    """``int32[rows]``: one past each row's last slot."""
    sizes: list[int]
    """Keys in each row's dict as decoded (fewer than its slots when a key repeats on the wire)."""
    dicts: Sequence[dict[str, str] | None]
    """The attribute dict each row's record was given, in row order (None in the columns a queue holds, for a
    row none of the records it holds had: :meth:`held_by`)."""

    def row_of(self) -> dict[int, int]:
        """``id(dict) -> row`` for the rows' dicts (alive as long as these columns are)."""
        return {id(d): i for i, d in enumerate(self.dicts) if d is not None}

    def held_by(self, records: Sequence[SpanRecord]) -> AttributeColumns:
        """These columns keeping only the dicts that ``records`` hold (the others None), for a queue that keeps
        the columns as long as it keeps ``records``.

        Why: the columns keep every row's dict alive (a row is found by its dict's identity), so a queue that
        kept them whole would keep the dicts of the spans the stages left out, the dicts redaction replaced
        (with the values it took out), and those of the parts of a request already written while its last part
        waits (a request bigger than a batch is written in parts): memory that no record of the queue holds and
        its byte bound does not count. A row whose dict is dropped here describes none of ``records``, since
        none holds that dict: what is left answers for them exactly as the whole columns did."""
        dicts = self.dicts
        if len(records) == len(dicts) and all(map(is_, map(_attributes_of, records), dicts)):
            return self  # (the usual request: every span kept, in its order, with the dict it was decoded with)
        held = set(map(id, map(_attributes_of, records)))
        return replace(self, dicts=[d if id(d) in held else None for d in dicts])


@runtime_checkable
class BatchTransform(Transform, Protocol):
    """A stage that also runs over a request's records at once (quirks, name scrubbing, price and redaction:
    their columnar paths).

    ``process`` fills the records in place and returns those that go on; it must decide each record as
    ``__call__`` would, which stays the per-record path (a failing batch is re-run record by record, so
    one span's bad input rejects that span only). ``columns`` are the request's attributes as the wire
    scan read them, when it did (None otherwise): a stage may use them for the records they describe."""

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]: ...


Key = tuple[str, str, str, int]
"""(tenant, trace_id, span_id, start_time_ns): a span's identity (``sinks/identity.py``)."""
SpendRow = tuple[str, str, str, str, int, int, int, int, int, "int | None", str, str, "int | None"]
"""What the spend metrics count of one span: (tenant, service, provider, model, input, output, cache_read,
cache_write, reasoning tokens, cost_pusd, pricing_status, the missing dimension of a partial price ("" for
any other status), the reported cost of a priced span (None for any other status))."""


class WireRecords(Protocol):
    """A batch of span records a queue keeps in another form than one SpanRecord per span.

    Two queues make them: the Kafka consumer (``queue.kafka_codec.WireBatch``: validated protobuf that
    ClickHouse parses itself, :class:`ProtobufRecords`) and the in-process queue for the requests the columnar
    path decided (``storage.table.SpanTable``: the rows as an Arrow table). Either way the writer never builds
    a Python object per span: it asks for identities and spend rows, a subset (only when the batch holds
    copies), and the rows to insert (:meth:`to_arrow`, or ``FORMAT ProtobufList`` input for the first kind).
    ``to_records`` builds SpanRecords in full, for parking.
    """

    def __len__(self) -> int: ...

    def identity_keys(self) -> list[Key]: ...

    def spend_rows(self) -> list[SpendRow]: ...

    def subset(self, keep: Sequence[int]) -> WireRecords: ...

    def to_arrow(self) -> Any: ...

    def to_records(self) -> list[SpanRecord]: ...


@runtime_checkable
class ProtobufRecords(WireRecords, Protocol):
    """Wire records ClickHouse can parse itself: ``FORMAT ProtobufList`` input of ``protobuf_message`` in
    ``protobuf_schema`` (the Kafka consumer's batch)."""

    protobuf_schema: str
    protobuf_message: str

    def protobuf_list(self) -> bytes: ...


Records = list[SpanRecord] | WireRecords
"""What travels from a queue to a sink: SpanRecords (the in-process queue) or wire records (Kafka)."""


@dataclass(slots=True)
class Batch:
    """Records handed from a queue to a sink, with what the queue needs to acknowledge them.

    ``dedup_token`` identifies the batch's content in its queue (e.g. partition and offset range)
    so that a sink can make a redelivered batch a no-op.
    """

    records: Records
    dedup_token: str = ""
    handle: Any = None
    columns: list[AttributeColumns] = field(default_factory=list)
    """The attribute columns the requests of ``records`` were decoded with, where the queue kept them (the
    in-process queue does): a sink may build a record's attribute map from them while they still describe
    it (``AttributeColumns``), instead of reading its dict."""


class QueueFull(Exception):
    """The queue cannot take more records now; the caller should answer 'retry later'."""


class QueueUnavailable(Exception):
    """The queue's backend cannot be reached; the caller should answer 'retry later'."""


class QueueBusy(Exception):
    """Too much is in flight to the queue's backend; the caller should retry after ``retry_after_seconds``.

    The receiver answers RESOURCE_EXHAUSTED with a RetryInfo carrying the delay.
    """

    def __init__(self, message: str, retry_after_seconds: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Publisher(Protocol):
    """Receiver side of a queue: accepts the records of one request."""

    def publish(self, records: list[SpanRecord], wire_bytes: int | None = None,
                columns: AttributeColumns | None = None) -> Future[None]:
        """Hand over ``records``; the future completes when the queue's durability promise is kept.

        ``wire_bytes``, when given, is the size of the request they were decoded from: a queue bounded in
        memory may estimate what they hold from it instead of reading every string. ``columns``, when given,
        are that request's attribute columns: a queue that hands its batches over in memory passes them on
        (``Batch.columns``); the Kafka publisher writes the attribute maps of the records they describe from
        them, and they go no further than its messages.

        Raises :class:`QueueFull`, :class:`QueueBusy` or :class:`QueueUnavailable` when it cannot take
        them now; the future may fail with :class:`QueueUnavailable`.
        """
        ...

    def close(self) -> None: ...


class BatchReader(Protocol):
    """Sink side of a queue: batches of records, acknowledged after they are stored."""

    def take(self, max_records: int, max_age_seconds: float) -> Batch | None:
        """The next batch, when it is full or its oldest record is old enough; None once closed and empty."""
        ...

    def commit(self, batch: Batch) -> None:
        """The batch is stored (or parked): the queue may forget it."""
        ...
