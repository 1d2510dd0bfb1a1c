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

from typing import Any

from llm_cost_tracker.transforms._detectors import NEVER_CLEAR, Scanner
from llm_cost_tracker.transforms.usage import LOWERED_NAMES
from llm_cost_tracker.types import SpanRecord

__all__ = ["NAME_FIELDS", "ScrubNames"]

NAME_FIELDS = ("service_name", "tenant", "request_model", "response_model")
"""Fields replaced as a whole when they hold a secret (``span_name`` is masked in place; provider and
operation too, checked as they were before usage lower-cased them: :data:`.usage.LOWERED_NAMES`)."""
_CACHE_LIMIT = 4096
_CACHED_CHARS = 256
"""Names this long or shorter are remembered (at most 4,096 of them: ~4 MiB for adversarial names)."""


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
        min_length = self._scanner.min_length
        found: list[str] = []
        if len(record.span_name) >= min_length:
            record.span_name, hit = self._clean(record.span_name, False)
            found.extend(hit)
        for field in NAME_FIELDS:
            value = getattr(record, field)
            if len(value) >= min_length:
                clean, hit = self._clean(value, True)
                if hit:
                    setattr(record, field, clean)
                    found.extend(hit)
        attrs = record.attributes
        for field, keys in LOWERED_NAMES:
            if len(getattr(record, field)) >= min_length:
                raw = next((v for k in keys if (v := attrs.get(k))), "")
                clean, hit = self._clean(raw, True)
                if hit:
                    setattr(record, field, clean.lower())
                    found.extend(hit)
        if found and self._counter is not None:
            for detector in found:
                self._counter.labels(detector=detector, mode="mask").inc()
        return record
