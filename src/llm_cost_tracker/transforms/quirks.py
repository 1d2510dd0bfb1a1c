"""Known producers that deviate from the conventions they claim, and how their spans are read right.

Each :class:`Quirk` is recognised from what the span itself says (``telemetry.sdk.name``, the
instrumentation scope, the attributes present) and fixes the record :class:`~.usage.ExtractUsage`
filled in, before pricing. A fixed span carries ``llm_cost_tracker.quirks`` (the names, comma
separated), so a stored row shows why its counts differ from its raw attributes. Deviations that are
only another name for a key (the anthropic SDK's ``gen_ai.usage.cache_write.input_tokens``,
OpenInference's ``embedding.model_name``) are read by ``ExtractUsage`` for every producer and are
listed in :data:`KEY_ALIASES` for the record. docs/dialects.md has the table, with the library
versions each was recorded from (tests/transforms/testdata/quirks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llm_cost_tracker.types import ZERO_USAGE, AttributeColumns, SpanRecord, TokenUsage

__all__ = ["KEY_ALIASES", "QUIRKS", "QUIRKS_ATTRIBUTE", "Quirk", "Quirks", "openlit_sdk"]

QUIRKS_ATTRIBUTE = "llm_cost_tracker.quirks"
"""Attribute naming the quirks applied to a span."""
ESTIMATED = "estimated"
"""Marker a fix returns when the counts are not the provider's (the span is then priced as no usage)."""

KEY_ALIASES = {
    "gen_ai.usage.cache_write.input_tokens": "anthropic SDK 2.x own spans (scope com.anthropic.sdk.python): "
                                             "cache writes, read as gen_ai.usage.cache_creation.input_tokens",
    "embedding.model_name": "OpenInference EMBEDDING spans: the model, read as llm.model_name",
}


def openlit_sdk(record: SpanRecord) -> bool:
    """The span comes from OpenLIT (it sets ``telemetry.sdk.name`` on the resource and on each span)."""
    return (record.resource_attributes.get(_SDK) == "openlit"
            or record.attributes.get(_SDK) == "openlit")


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _openlit_anthropic_raw_input(record: SpanRecord) -> str | None:
    """OpenLIT puts Anthropic's raw ``input_tokens`` (cache reads and writes excluded) under
    ``gen_ai.usage.input_tokens``; its own ``gen_ai.client.token.usage`` (= input + output) confirms it.
    The input total becomes raw + cache reads + cache writes, as the GenAI conventions count it."""
    if record.provider != "anthropic" or not openlit_sdk(record):
        return None
    attrs = record.attributes
    raw = _int(attrs.get("gen_ai.usage.input_tokens"))
    total = _int(attrs.get("gen_ai.client.token.usage"))
    u = record.usage
    if raw is None or total is None or total != raw + u.output_tokens:
        return None
    record.usage = TokenUsage(raw + u.cache_read_tokens + u.cache_write_tokens, u.output_tokens, u.cache_read_tokens,
                              u.cache_write_tokens, u.reasoning_tokens)
    return "openlit_anthropic_raw_input"


def _openlit_openai_estimate(record: SpanRecord) -> str | None:
    """OpenLIT counts tokens itself (tiktoken over the text) when an OpenAI chat answer carries no usage (a
    stream without ``include_usage``), and then sets no cache attributes, which it always sets from real
    usage. Such counts are not what the provider billed: the span is priced as having no usage."""
    if record.provider != "openai" or record.operation != "chat" or not openlit_sdk(record):
        return None
    if "gen_ai.usage.cache_read.input_tokens" in record.attributes:
        return None
    return ESTIMATED


def _openai_v2_no_cache(record: SpanRecord) -> str | None:
    """``opentelemetry-instrumentation-openai-v2`` (2.x) reports no cached-token count: cache reads are
    billed at the input rate, so its chat cost is an upper bound. Marked, not changed (nothing to read)."""
    if record.scope_name != _OPENAI_V2 or record.operation != "chat":
        return None
    if "gen_ai.usage.cache_read.input_tokens" in record.attributes:
        return None  # a later version that reports them
    return "openai_v2_no_cache_count"


@dataclass(frozen=True, slots=True)
class Quirk:
    """One producer's deviation.

    Args:
        name: recorded in ``llm_cost_tracker.quirks``.
        producer: who deviates, and from which version it was recorded.
        fix: changes the record when the span is this producer's; returns the name to record (or
            :data:`ESTIMATED`), or None when the span is not concerned.
        concerns: ``(provider, operation, scope_name, openlit) -> False`` when ``fix`` returns None for every
            span with these four (``openlit``: :func:`openlit_sdk` of the span; a necessary condition, never
            sufficient): :meth:`Quirks.process` asks it once per distinct four of a request and calls ``fix``
            only where it may apply.
    """

    name: str
    producer: str
    fix: Callable[[SpanRecord], str | None]
    concerns: Callable[[str, str, str, bool], bool] = lambda provider, operation, scope, openlit: True


_OPENAI_V2 = "opentelemetry.instrumentation.openai_v2"
QUIRKS: tuple[Quirk, ...] = (
    Quirk("openlit_anthropic_raw_input", "openlit 1.45.0 (anthropic 0.125)", _openlit_anthropic_raw_input,
          lambda provider, operation, scope, openlit: openlit and provider == "anthropic"),
    Quirk("openlit_openai_estimate", "openlit 1.45.0 (openai 2.54)", _openlit_openai_estimate,
          lambda provider, operation, scope, openlit: openlit and provider == "openai" and operation == "chat"),
    Quirk("openai_v2_no_cache_count", "opentelemetry-instrumentation-openai-v2 2.4b0", _openai_v2_no_cache,
          lambda provider, operation, scope, openlit: scope == _OPENAI_V2 and operation == "chat"),
)
_SDK = "telemetry.sdk.name"


class Quirks:
    """Transform: applies every matching :class:`Quirk` (between usage extraction and pricing).

    A span whose counts turn out to be the producer's own estimate gets zero usage, so pricing marks it
    ``no_usage`` rather than storing a made-up cost; its raw attributes keep the estimate.
    """

    __slots__ = ("_quirks",)

    def __init__(self, quirks: tuple[Quirk, ...] = QUIRKS) -> None:
        self._quirks = quirks

    def __call__(self, record: SpanRecord) -> SpanRecord:
        return self._apply(record, self._quirks)

    def concerns(self, provider: str, operation: str, scope: str, openlit: bool) -> bool:
        """Whether a quirk may concern a span with these four (:attr:`Quirk.concerns`): False means none does."""
        return any(q.concerns(provider, operation, scope, openlit) for q in self._quirks)

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]:
        """``records`` fixed in place: which quirks may concern a span is decided once per distinct (provider,
        operation, scope, OpenLIT or not) of the request (:attr:`Quirk.concerns`), and only those are tried on it
        (most spans: none; the spans of a resource share its dict, asked once). A fix reads nothing it changes,
        so a batch that fails part way can be run again span by span (as the chain does)."""
        concerned: dict[tuple[str, str, str, bool], tuple[Quirk, ...]] = {}
        resource: dict[str, str] | None = None
        openlit_resource = False
        for record in records:
            if record.resource_attributes is not resource:
                resource = record.resource_attributes
                openlit_resource = resource.get(_SDK) == "openlit"
            who = (record.provider, record.operation, record.scope_name,
                   openlit_resource or record.attributes.get(_SDK) == "openlit")
            quirks = concerned.get(who)
            if quirks is None:
                quirks = concerned[who] = tuple(q for q in self._quirks if q.concerns(*who))
            if quirks:
                self._apply(record, quirks)
        return records

    @staticmethod
    def _apply(record: SpanRecord, quirks: tuple[Quirk, ...]) -> SpanRecord:
        applied = []
        for quirk in quirks:
            outcome = quirk.fix(record)
            if outcome is None:
                continue
            if outcome == ESTIMATED:
                record.usage = ZERO_USAGE
                outcome = quirk.name
            applied.append(outcome)
        if applied:
            record.attributes[QUIRKS_ATTRIBUTE] = ",".join(applied)
        return record
