"""Names a span is stored, labelled and logged under, cleared of secrets and card numbers before pricing.

Redaction (:mod:`.redact`) treats attribute values, last. The names taken out of a span (span name,
service, tenant, operation, provider, request and response model) are columns, rollup keys, metric
labels and words of the "model has no price" log line, so they are checked here, right after they are
read and before the price stage logs an unknown model. The detectors are those of
:data:`._detectors.NEVER_CLEAR` (keys, tokens, private keys, card numbers), whatever the redaction
policy. A name that holds one is not a name: it becomes the placeholder (``<OPENAI_KEY>``), so such a
span is stored unpriced under that name and counted. The span name, free text, is masked in place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from llm_cost_tracker.transforms._detectors import NEVER_CLEAR, Scanner
from llm_cost_tracker.transforms.usage import LOWERED_NAMES
from llm_cost_tracker.types import AttributeColumns, SpanRecord

__all__ = ["NAME_FIELDS", "ScrubNames"]

NAME_FIELDS = ("service_name", "tenant", "request_model", "response_model")
"""Fields replaced as a whole when they hold a secret (``span_name`` is masked in place; provider and
operation too, checked as they were before usage lower-cased them: :data:`.usage.LOWERED_NAMES`)."""
_CACHE_LIMIT = 4096
_CACHED_CHARS = 256
"""Names this long or shorter are remembered (at most 4,096 of them: ~4 MiB for adversarial names)."""
_NAMES = attrgetter("span_name", *NAME_FIELDS, *(field for field, _ in LOWERED_NAMES))
"""A record's names: the span name, :data:`NAME_FIELDS`, then provider and operation."""
_Outcome = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
"""What scrubbing does to a record: (field, value to store) pairs, and the detectors found."""
_RAW: _Outcome = ((), tuple(["raw"]))
"""Outcome of names whose provider or operation is long enough to be checked: that reads the attribute the
name was lower-cased from, so each such record is decided on its own (compared by identity)."""
_UNSEEN: _Outcome = ((), tuple(["unseen"]))
"""``dict.get`` default: names not decided yet (compared by identity)."""


class ScrubNames:
    """Transform: each name field with a secret or card number becomes its placeholder (counted).

    Args:
        metrics: where replacements are counted (``llm_redactions_total{detector, mode="mask"}``).
    """

    __slots__ = ("_scanner", "_cache", "_counter")

    def __init__(self, metrics: Any = None) -> None:
        self._scanner = Scanner(NEVER_CLEAR)
        self._cache: tuple[dict[str, tuple[str, tuple[str, ...]]], ...] = ({}, {})
        """Per ``whole``: name -> (what to store, detectors found); names repeat from span to span."""
        self._counter = getattr(metrics, "redactions", None)

    def _clean(self, name: str, whole: bool) -> tuple[str, tuple[str, ...]]:
        cache = self._cache[whole]
        entry = cache.get(name)
        if entry is not None:
            return entry
        counts: dict[str, int] = {}
        masked = self._scanner.mask(name, counts)
        if counts and whole:
            masked = "".join(f"<{d.upper()}>" for d in counts)
        entry = (masked, tuple(counts))
        if len(name) <= _CACHED_CHARS:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[name] = entry
        return entry

    def __call__(self, record: SpanRecord) -> SpanRecord:
        outcome = self._decide(record)
        if outcome is not None:
            _apply(record, outcome)
            self._count(outcome[1])
        return record

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]:
        """``records`` scrubbed in place, each distinct tuple of names decided once (a request repeats a few
        services, models and span names; most hold nothing and leave the record as it is).

        Every record is decided before any is changed or counted, so a batch that fails part way (the chain
        then runs :meth:`__call__` span by span) has changed and counted nothing."""
        outcomes: dict[tuple[str, ...], _Outcome | None] = {}
        changed: list[tuple[SpanRecord, _Outcome]] = []
        for record in records:
            names = _NAMES(record)
            outcome = outcomes.get(names, _UNSEEN)
            if outcome is _UNSEEN:
                outcome = outcomes[names] = self.names_outcome(names)
            if outcome is _RAW:
                outcome = self._decide(record)
            if outcome is not None:
                changed.append((record, outcome))
        found: list[str] = []
        for record, outcome in changed:
            _apply(record, outcome)
            found += outcome[1]
        self._count(found)
        return records

    def names_outcome(self, names: tuple[str, ...]) -> _Outcome | None:
        """What :meth:`_decide` says of a record with these names (:data:`_NAMES`), or :data:`_RAW` when it
        depends on more than the names (a provider or operation long enough to hold a secret is checked as
        sent, before lower-casing)."""
        min_length = self._scanner.min_length
        span_name, *fields, provider, operation = names
        if len(provider) >= min_length or len(operation) >= min_length:
            return _RAW
        return self._outcome(span_name, fields, ())

    def _decide(self, record: SpanRecord) -> _Outcome | None:
        """The names of ``record`` to replace and the detectors found (None when there is none); changes nothing."""
        min_length = self._scanner.min_length
        attrs = record.attributes
        lowered = [(field, next((v for k in keys if (v := attrs.get(k))), "")) for field, keys in LOWERED_NAMES
                   if len(getattr(record, field)) >= min_length]
        return self._outcome(record.span_name, [getattr(record, field) for field in NAME_FIELDS], lowered)

    def _outcome(self, span_name: str, fields: Sequence[str], lowered: Sequence[tuple[str, str]]) -> _Outcome | None:
        """The changes for a span name, the :data:`NAME_FIELDS` values, and the provider or operation long
        enough to check with the attribute value each was lower-cased from."""
        min_length = self._scanner.min_length
        changes: list[tuple[str, str]] = []
        found: list[str] = []
        if len(span_name) >= min_length:
            clean, hit = self._clean(span_name, False)
            if hit:
                changes.append(("span_name", clean))
                found.extend(hit)
        for field, value in zip(NAME_FIELDS, fields, strict=True):
            if len(value) >= min_length:
                clean, hit = self._clean(value, True)
                if hit:
                    changes.append((field, clean))
                    found.extend(hit)
        for field, raw in lowered:
            clean, hit = self._clean(raw, True)
            if hit:
                changes.append((field, clean.lower()))
                found.extend(hit)
        return (tuple(changes), tuple(found)) if found else None

    def _count(self, found: Sequence[str]) -> None:
        if found and self._counter is not None:
            for detector, n in Counter(found).items():
                self._counter.labels(detector=detector, mode="mask").inc(n)


def _apply(record: SpanRecord, outcome: _Outcome) -> None:
    for field, value in outcome[0]:
        setattr(record, field, value)
