"""Attribute maps built from the wire scan's columns are the maps built from the records' dicts.

``records_to_arrow(records, columns)`` takes a record's attribute map from the request's key and value
pools when the columns still describe its dict (same dict, no key added, no key repeated on the wire), and
walks the dict otherwise; the in-process queue hands the columns to the writer (``Batch.columns``).
"""

from __future__ import annotations

import os
import random

from llm_cost_tracker.queue.memory import MemoryQueue
from llm_cost_tracker.sources.otlp_decode import DecodeLimits, decode_spans, parse_request
from llm_cost_tracker.storage.rows import described_rows, records_to_arrow
from llm_cost_tracker.testing import SECRETS, genai_attributes, make_request, make_span
from llm_cost_tracker.transforms.calls import CallIdentity
from llm_cost_tracker.transforms.redact import Redact
from llm_cost_tracker.types import AttributeColumns, SpanRecord
from tests.conftest import wire_scanned


def _payload(rng: random.Random, spans: int) -> bytes:
    out = []
    for _ in range(spans):
        attrs: dict[str, object] = dict(genai_attributes(input_tokens=rng.randrange(1, 5000)))
        if rng.random() < 0.2:
            attrs["note"] = f"key {SECRETS['openai_key']}"  # redaction gives this span another dict
        if rng.random() < 0.1:
            attrs = {}
        if rng.random() < 0.2:  # the same response id as an earlier span: call identity adds keys in place
            attrs["gen_ai.response.id"] = f"r{rng.randrange(3)}"
        span = make_span(attrs, trace_id=os.urandom(16), span_id=os.urandom(8))
        if rng.random() < 0.1:  # a key twice on the wire
            span.attributes.extend(make_span({"note": "a", "x": "1"}).attributes)
            span.attributes.extend(make_span({"note": "b"}).attributes)
        out.append(span)
    return make_request(out, {"service.name": "svc"}).SerializeToString()


def _staged(seed: int, requests: int = 4) -> tuple[list[SpanRecord], list[AttributeColumns]]:
    rng = random.Random(seed)
    redact, calls = Redact(), CallIdentity()
    records: list[SpanRecord] = []
    columns = []
    for _ in range(requests):
        got, c = wire_scanned(_payload(rng, rng.randrange(1, 120)))
        got = calls(redact.process(got, c))
        for record in got:
            record.scope_name = ""
        records += got
        columns.append(c)
    return records, columns


def test_maps_from_columns_equal_maps_from_dicts() -> None:
    for seed in range(8):
        records, columns = _staged(seed)
        rng = random.Random(seed)
        reference = records_to_arrow(records)
        assert records_to_arrow(records, columns).equals(reference)
        # a batch is any subset, in any order (first arrivals only, chunks split across batches)
        subset = rng.sample(records, len(records) // 2)
        assert records_to_arrow(subset, columns).equals(records_to_arrow(subset))
        assert records_to_arrow(subset, columns[:1]).equals(records_to_arrow(subset))


def test_records_without_columns_mix_in() -> None:
    """Records of a request protobuf decoded (no columns) beside records of scanned ones."""
    records, columns = _staged(3, requests=2)
    small = make_request([make_span(genai_attributes(), trace_id=os.urandom(16), span_id=os.urandom(8))],
                         {"service.name": "svc"}).SerializeToString()
    decoded = decode_spans(parse_request(small), DecodeLimits())
    mixed = records[:5] + decoded.records + records[5:]
    assert records_to_arrow(mixed, columns).equals(records_to_arrow(mixed))


def test_described_rows_are_read_from_the_pools() -> None:
    """The point of the columns: a described dict is not read. Changing one of its values in place (which
    the stages never do, ``AttributeColumns``) shows in the dict path only."""
    records, columns = wire_scanned(_payload(random.Random(1), 20))
    plain = next(r for r in records if r.attributes.get("gen_ai.request.model") == "gpt-4o-mini"
                 and "note" not in r.attributes)
    plain.attributes["gen_ai.request.model"] = "changed"
    from_dicts = records_to_arrow(records).column("attributes").to_pylist()
    from_columns = records_to_arrow(records, [columns]).column("attributes").to_pylist()
    i = records.index(plain)
    assert ("gen_ai.request.model", "changed") in from_dicts[i]
    assert ("gen_ai.request.model", "gpt-4o-mini") in from_columns[i]


def test_the_memory_queue_hands_the_columns_to_the_writer() -> None:
    records, columns = wire_scanned(_payload(random.Random(2), 30))
    queue = MemoryQueue(capacity=1000)
    queue.publish(records[:10], columns=columns)
    queue.publish(records[10:])
    batch = queue.take(max_records=25, max_age_seconds=0)
    assert batch is not None and len(batch.columns) == 1
    _same_pools(batch.columns[0], columns)
    assert _held_rows(batch.columns[0]) == list(range(10))  # only the dicts of the records it holds
    rest = queue.take(max_records=25, max_age_seconds=0)
    assert rest is not None and rest.columns == []
    queue.publish(records, columns=columns)  # split across two batches: each part keeps its own rows' dicts
    first, second = queue.take(max_records=20, max_age_seconds=0), queue.take(max_records=20, max_age_seconds=0)
    assert first is not None and second is not None and len(first.columns) == len(second.columns) == 1
    for part, rows in ((first, range(20)), (second, range(20, 30))):
        _same_pools(part.columns[0], columns)
        assert _held_rows(part.columns[0]) == list(rows)
        assert records_to_arrow(part.records, part.columns).equals(records_to_arrow(part.records))


def _same_pools(held: AttributeColumns, columns: AttributeColumns) -> None:
    """``held`` is ``columns`` but for its dicts: the same pools and ids, not copies."""
    assert all(getattr(held, name) is getattr(columns, name)
               for name in ("keys", "values", "key_ids", "value_ids", "begins", "ends", "sizes"))


def _held_rows(columns: AttributeColumns) -> list[int]:
    return [row for row, d in enumerate(columns.dicts) if d is not None]


def test_a_batch_every_record_of_which_is_described() -> None:
    """The usual batch: several requests, every record still holding the dict it was decoded with (the maps
    then come from the pools numbered end to end, request after request), in and out of order."""
    rng = random.Random(5)
    records: list[SpanRecord] = []
    columns = []
    for n in (7, 1, 30, 12):
        spans = [make_span(dict(genai_attributes(input_tokens=rng.randrange(1, 5000), model=f"m{rng.randrange(4)}")),
                           trace_id=os.urandom(16), span_id=os.urandom(8)) for _ in range(n)]
        got, c = wire_scanned(make_request(spans, {"service.name": f"svc{n}"}).SerializeToString())
        records += got
        columns.append(c)
    group, _ = described_rows([r.attributes for r in records], columns)
    assert (group >= 0).all()
    assert records_to_arrow(records, columns).equals(records_to_arrow(records))
    shuffled = rng.sample(records, len(records))
    assert records_to_arrow(shuffled, columns).equals(records_to_arrow(shuffled))
    assert records_to_arrow(shuffled[3:], columns[::-1]).equals(records_to_arrow(shuffled[3:]))
