"""The stage chain every receiver runs on a request's records: detect -> usage -> quirks -> scrub -> price
-> redact, then call identity.

One place decides what a failing stage means, for every ingest protocol (gRPC and HTTP receivers hand
their decoded batch here): a span that is not an LLM span is counted and left out; a :class:`Drop` rejects
that span with its reason; an exception in a stage (a bug on one span's input) rejects that span only,
fail-closed (it is never stored half-redacted), and the log names the stage and the error, never values.

A stage that can run over many records at once (a :class:`~llm_cost_tracker.types.BatchTransform`: quirks,
name scrubbing, price and redaction) gets the survivors of the stages before it in one call, with the request's
attribute columns when the wire scan made them; if that call fails, the records are run through it one
by one, so the rules above still decide span by span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.transforms.calls import CallIdentity
from llm_cost_tracker.transforms.detect import NOT_LLM
from llm_cost_tracker.types import AttributeColumns, BatchTransform, Drop, SpanRecord, Transform

__all__ = ["TRANSFORM_ERROR", "Chain", "Processed"]

log = get_logger("transforms")
TRANSFORM_ERROR = "transform_error"
"""Rejection reason of a span a transform failed on (a bug, logged; the other spans go on)."""


@dataclass(slots=True)
class Processed:
    """What the chain made of one request: the records to publish and how many spans were not LLM spans."""

    records: list[SpanRecord]
    other: int


class Chain:
    """Runs the per-record stages over a decoded request, then call identity over the survivors.

    Args:
        transforms: per-record stages, in order.
        calls: call identity (marks the later spans of a provider call as duplicates); None skips it.
    """

    __slots__ = ("_segments", "calls", "transforms")

    def __init__(self, transforms: Sequence[Transform], calls: CallIdentity | None = None) -> None:
        self.transforms = list(transforms)
        self.calls = calls
        self._segments: list[BatchTransform | list[Transform]] = []
        for transform in self.transforms:
            if isinstance(transform, BatchTransform):
                self._segments.append(transform)
            elif self._segments and isinstance(self._segments[-1], list):
                self._segments[-1].append(transform)
            else:
                self._segments.append([transform])

    def process(self, spans: Sequence[SpanRecord], reject: Callable[[str, str], None],
                others: list[SpanRecord] | None = None, columns: AttributeColumns | None = None) -> Processed:
        """``spans`` through every stage; each rejected span is told to ``reject(reason, message)`` (the
        decoded request's ``DecodedBatch.reject``, which counts it for the client's ``partial_success``).
        ``others``, when given, collects the spans that are not LLM spans (``--forward-all`` passes them on).
        ``columns``, the request's attributes as the wire scan read them, go to the batch stages."""
        records = list(spans)
        other = 0
        for segment in self._segments:
            if isinstance(segment, list):
                records, dropped = self._each(segment, records, reject, others)
                other += dropped
            else:
                try:
                    records = segment.process(records, columns)
                except Exception as exc:  # a bug the batch met: decide span by span, as if it ran per record
                    log.error("batch transform failed; running it per span", transform=type(segment).__name__,
                              error=type(exc).__name__)
                    records, dropped = self._each([segment], records, reject, others)
                    other += dropped
        if self.calls is not None:
            records = self.calls(records)
        return Processed(records, other)

    @staticmethod
    def _each(transforms: list[Transform], spans: list[SpanRecord], reject: Callable[[str, str], None],
              others: list[SpanRecord] | None) -> tuple[list[SpanRecord], int]:
        """``spans`` through ``transforms`` one record at a time: the survivors, and how many were not LLM spans."""
        records: list[SpanRecord] = []
        other = 0
        for record in spans:
            try:
                for transform in transforms:
                    record = transform(record)
            except Drop as drop:
                if drop.reason == NOT_LLM:
                    other += 1
                    if others is not None:
                        others.append(record)
                else:
                    reject(drop.reason, f"span {record.span_id}: {drop.reason}")  # ids only: names are text
                continue
            except Exception as exc:  # a bug on one span's input: reject that span, keep the rest of the request
                log.error("transform failed; span rejected", transform=type(transform).__name__,
                          error=type(exc).__name__, span_id=record.span_id)
                reject(TRANSFORM_ERROR, f"span {record.span_id}: internal error in "
                               f"{type(transform).__name__} ({type(exc).__name__}); reported to the operator")
                continue
            records.append(record)
        return records, other

    def forget(self, records: list[SpanRecord]) -> None:
        """Tell call identity that ``records`` were not accepted (their request failed): a retry is no copy."""
        if self.calls is not None:
            self.calls.forget(records)
