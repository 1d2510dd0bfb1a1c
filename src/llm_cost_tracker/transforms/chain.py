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

A run of per-record stages that starts with stages able to settle records from the columns (a
:class:`~._keyed.KeyedTransform`: detect, usage) lets them settle what they can first, each on what the one
before it settled (:func:`~._keyed.keyed`); every other record goes through the remaining stages' ``__call__``,
in order, under the rules above. A settled record is one that passes: nothing is dropped or rejected unseen.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_cost_tracker.log import get_logger
from llm_cost_tracker.transforms._keyed import KeyedTransform, keyed
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

    __slots__ = ("_segments", "_leading", "calls", "transforms")

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
        self._leading: dict[int, list[KeyedTransform]] = {}
        """id of a run of per-record stages -> its first stages that settle records from columns (asked here,
        once: ``isinstance`` of a protocol costs ~10 us)."""
        for segment in self._segments:
            if isinstance(segment, list):
                leading = self._leading[id(segment)] = []
                for transform in segment:
                    if not isinstance(transform, KeyedTransform):
                        break
                    leading.append(transform)

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
                records, dropped = self._each(segment, records, reject, others, columns, self._leading[id(segment)])
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
    def _settled(leading: list[KeyedTransform], spans: list[SpanRecord], columns: AttributeColumns) -> list[int]:
        """Per record of ``spans``, how many of the ``leading`` stages (from the first) have settled it from the
        ``columns``."""
        done = [0] * len(spans)
        stage: Transform = leading[0]
        try:
            described = keyed(spans, columns, tuple(sorted(frozenset().union(*(t.keyed_keys for t in leading)))),
                              tuple(flag for t in leading for flag in t.keyed_flags))
            for stage in leading:
                if described is None:
                    break
                passed = stage.settle(spans, described)
                done = list(map(operator.add, done, passed))
                described = described.restrict(passed)
        except Exception as exc:  # a bug: the stage runs per span (what it settled, ``__call__`` leaves as it is)
            log.error("settling from the columns failed; running the stage per span",
                      transform=type(stage).__name__, error=type(exc).__name__)
        return done

    @staticmethod
    def _each(transforms: list[Transform], spans: list[SpanRecord], reject: Callable[[str, str], None],
              others: list[SpanRecord] | None, columns: AttributeColumns | None = None,
              leading: Sequence[KeyedTransform] = ()) -> tuple[list[SpanRecord], int]:
        """``spans`` through ``transforms`` one record at a time, after what their ``leading`` stages (the first
        ones, that can) settled from the ``columns``: the survivors, and how many were not LLM spans."""
        if columns is not None and leading and spans:
            settled = Chain._settled(list(leading), spans, columns)
        else:
            settled = [0] * len(spans)
        every = len(transforms)
        if settled.count(every) == len(spans):  # every record settled (the usual request): nothing to run
            return list(spans), 0
        tails = [transforms[k:] for k in range(every)]
        records: list[SpanRecord] = []
        other = 0
        for record, done in zip(spans, settled, strict=True):
            if done == every:
                records.append(record)
                continue
            try:
                for transform in tails[done]:
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

    def forget_keys(self, keys: list[tuple[str, str]]) -> None:
        """:meth:`forget` of the spans with these (trace id, span id)."""
        if self.calls is not None:
            self.calls.forget_keys(keys)
