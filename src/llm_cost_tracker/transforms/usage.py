"""Read provider, model, operation and token usage from any supported dialect.

Dialects, tried in this order for each field (see ``docs/dialects.md``):

- ``genai``: current OpenTelemetry GenAI conventions (``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens``, ``gen_ai.usage.cache_read.input_tokens`` ...).
- ``genai_legacy``: older GenAI conventions and OpenLLMetry (``gen_ai.system``,
  ``gen_ai.usage.prompt_tokens``, ``gen_ai.usage.cache_read_input_tokens``, ``llm.usage.*``).
- ``openinference``: Arize OpenInference (``llm.model_name``, ``llm.provider``,
  ``llm.token_count.*``).

Cached tokens: every dialect above counts them *inside* the input total (GenAI conventions say
so; OpenLLMetry adds Anthropic's separate counts together; OpenInference's ``prompt_details`` are a
breakdown of ``llm.token_count.prompt``). One guard: when cache reads plus writes exceed the input
total, the producer evidently sent Anthropic's raw ``input_tokens`` (which exclude the cache), and
the input total is taken as their sum. Reasoning tokens are inside the output count everywhere.
"""

from __future__ import annotations

from decimal import Decimal

from llm_cost_tracker.transforms._keyed import Keyed
from llm_cost_tracker.types import PICO_PER_USD, Drop, SpanRecord, counted_usage

INVALID_TOKENS = "invalid_token_count"

# (dialect, key) in priority order, per field
_INPUT = (("genai", "gen_ai.usage.input_tokens"), ("genai_legacy", "gen_ai.usage.prompt_tokens"),
          ("genai_legacy", "llm.usage.prompt_tokens"), ("openinference", "llm.token_count.prompt"))
_OUTPUT = (("genai", "gen_ai.usage.output_tokens"), ("genai_legacy", "gen_ai.usage.completion_tokens"),
           ("genai_legacy", "llm.usage.completion_tokens"), ("openinference", "llm.token_count.completion"))
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
               "llm.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
                "gen_ai.usage.cache_creation_input_tokens",
                "llm.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
              "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_OPERATION = ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind")
_REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name", "embedding.model_name")
_RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model")
LOWERED_NAMES = (("provider", _PROVIDER), ("operation", _OPERATION))
"""Record fields stored lower-cased, with the attributes they are read from (in order): what checks them for
secrets must see the value before it was lower-cased (a lower-cased AWS key id is still the key)."""
_REPORTED_COST = ("gen_ai.usage.cost", "llm.cost.total", "llm.usage.cost", "gen_ai.usage.cost_usd")

MAX_TOKENS = 10**9
"""A billion tokens in one call is implausible; the bound keeps every cost inside int64 pico-USD."""


def parse_token_count(key: str, text: str) -> int:
    """A token count from its attribute text; raises ``Drop`` when negative or not an integer."""
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise Drop(INVALID_TOKENS) from None
        if not as_float.is_integer():
            raise Drop(INVALID_TOKENS) from None
        value = int(as_float)
    if value < 0 or value > MAX_TOKENS:
        raise Drop(INVALID_TOKENS)
    return value


def _first(attrs: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = attrs.get(key)
        if value:
            return value
    return ""


MAX_REPORTED_USD = Decimal(2**63 - 1) / PICO_PER_USD
"""About 9.2 million USD: larger reported costs are unusable (the stored pico-USD is an int64)."""


def parse_reported_cost(text: str) -> int | None:
    """A vendor-reported USD cost as pico-USD, or None when absent or unusable."""
    try:
        value = Decimal(text)
        if not value.is_finite() or value < 0 or value > MAX_REPORTED_USD:
            return None
        return int((value * PICO_PER_USD).to_integral_value())
    except ArithmeticError:  # InvalidOperation, and Overflow for exponents like 1E+999999999
        return None


_PLAN_LIMIT = 1024
FAST_BOUND = 2**29
"""Counts whose bitwise OR lies in ``[0, 2**29)`` are each in ``[0, MAX_TOKENS]``: one comparison instead of ten."""


class Plan:
    """For one tuple of attribute keys: what :class:`ExtractUsage` reads, decided once.

    ``counts``: per count field (input, output, cache read, cache write, reasoning), the first of its keys
    present, or None. ``names``: per name field (provider, operation, request and response model), the one
    key present, or None; ``names`` is None when a field has two keys or more present (the first non-empty
    one wins, so the value decides: :meth:`ExtractUsage._names` reads them in order). The dialect depends on
    the keys alone. ``first``: the first key object of the tuple the plan is filed under.
    """

    __slots__ = ("counts", "names", "dialect", "provider", "operation", "request_model", "response_model",
                 "reported_cost", "first")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.first = keys[0] if keys else ""
        present = set(keys)
        inputs = [p for p in _INPUT if p[1] in present]
        outputs = [p for p in _OUTPUT if p[1] in present]
        self.provider, self.operation, self.request_model, self.response_model, self.reported_cost = (
            tuple(k for k in group if k in present)
            for group in (_PROVIDER, _OPERATION, _REQUEST_MODEL, _RESPONSE_MODEL, _REPORTED_COST))
        first = [next((k for k in group if k in present), None) for group in (_CACHE_READ, _CACHE_WRITE, _REASONING)]
        self.counts = (inputs[0][1] if inputs else None, outputs[0][1] if outputs else None, *first)
        groups = (self.provider, self.operation, self.request_model, self.response_model)
        self.names = (None if any(len(g) > 1 for g in groups) else
                      tuple(g[0] if g else None for g in groups))
        openinference = "llm.model_name" in present or "embedding.model_name" in present
        self.dialect = (inputs[0][0] if inputs else outputs[0][0] if outputs else
                        "openinference" if openinference else "genai")


KEYED_KEYS = frozenset(key for group in (_INPUT, _OUTPUT) for _, key in group) | frozenset(
    _CACHE_READ + _CACHE_WRITE + _REASONING + _PROVIDER + _OPERATION + _REQUEST_MODEL + _RESPONSE_MODEL
    + _REPORTED_COST)
"""Every key whose presence or value :class:`ExtractUsage` reads (the plans depend on these alone)."""


def _fill_plain(records: list[SpanRecord], members: list[int], plan: Plan, out: list[bool]) -> None:
    """``ExtractUsage._fill`` of ``records[k]`` for each of ``members`` (``out[k]``: whether it did), for a plan
    with one key per name and no reported cost: the same statements, with the plan read once for them all."""
    i, o, r, w, x = plan.counts
    p, op, rq, rs = plan.names  # type: ignore[misc]
    dialect = plan.dialect
    for k in members:
        record = records[k]
        attrs = record.attributes
        try:
            input_tokens = 0 if i is None else int(attrs[i])
            output_tokens = 0 if o is None else int(attrs[o])
            cache_read = 0 if r is None else int(attrs[r])
            cache_write = 0 if w is None else int(attrs[w])
            reasoning = 0 if x is None else int(attrs[x])
        except ValueError:
            continue
        if not 0 <= input_tokens | output_tokens | cache_read | cache_write | reasoning < FAST_BOUND:
            continue
        if cache_read + cache_write > input_tokens:
            input_tokens += cache_read + cache_write
        if reasoning > output_tokens:
            output_tokens += reasoning
        record.dialect = dialect
        record.provider = "" if p is None else attrs[p].lower()
        record.operation = "" if op is None else attrs[op].lower()
        record.request_model = "" if rq is None else attrs[rq]
        record.response_model = "" if rs is None else attrs[rs]
        record.usage = counted_usage(input_tokens, output_tokens, cache_read, cache_write, reasoning)
        out[k] = True


class ExtractUsage:
    """Transform: fills provider, model, operation, dialect and :class:`TokenUsage`.

    Which of the many dialect keys a span has is decided once per tuple of attribute keys (instrumentations
    send the same keys span after span), so a span costs lookups of the keys it has, not of every key tried:
    the common span (integer counts, one key per name) reads each of them once, inline, and a span with
    anything else (a count that is a float or out of range, two keys for one name) is read by the general
    code (:meth:`_counts`, :meth:`_names`), which decides it the same way.
    """

    __slots__ = ("_plans", "_keyed_plans")
    keyed_keys = KEYED_KEYS
    keyed_flags = ()

    def __init__(self) -> None:
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._keyed_plans: dict[frozenset[str], Plan] = {}
        """Plans by the set of keys present among :data:`KEYED_KEYS` and the keys of the stages settled with it
        (:meth:`settle`)."""

    def _plan(self, keys: tuple[str, ...]) -> Plan:
        plan = Plan(keys)
        if len(self._plans) >= _PLAN_LIMIT:
            self._plans.clear()
        self._plans[keys] = plan
        return plan

    def _refile(self, keys: tuple[str, ...], plan: Plan) -> Plan:
        """``plan`` filed again under ``keys``, the same strings as other objects. Each request's keys are
        other objects (the source makes one string per distinct key and request) and a dict keeps the key
        it was first given, so finding the plan compared every string by its characters, span after span;
        filed under this request's tuple, the next span's compare finds the same objects."""
        self._plans.pop(keys, None)
        plan.first = keys[0]
        self._plans[keys] = plan
        return plan

    def __call__(self, record: SpanRecord) -> SpanRecord:
        attrs = record.attributes
        keys = tuple(attrs)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plan(keys)
        elif keys and plan.first is not keys[0]:
            plan = self._refile(keys, plan)
        if not self._fill(record, attrs, plan):
            self._fill(record, attrs, plan, self._counts(attrs, plan.counts))
        return record

    def settle(self, records: list[SpanRecord], keyed: Keyed) -> list[bool]:
        """Fills the described records as ``__call__`` would, with their plan found by the set of keys they have
        (``keyed``: once per set and request) rather than by the tuple of every key (~0.6 us a span); True for
        those. A record whose counts ``__call__`` would read with :func:`parse_token_count` (a float, out of
        bounds, not a number: it may be rejected) is left as it was, for ``__call__``."""
        groups: dict[int, list[int]] = {}
        for k, mask in enumerate(keyed.masks):
            if mask >= 0:
                members = groups.get(mask)
                if members is None:
                    groups[mask] = [k]
                else:
                    members.append(k)
        cached = self._keyed_plans
        out = [False] * len(records)
        for mask, members in groups.items():
            present = keyed.present(mask)[0]
            plan = cached.get(present)
            if plan is None:
                if len(cached) >= _PLAN_LIMIT:
                    cached.clear()
                plan = cached[present] = Plan(tuple(present))  # (a plan reads the keys' presence alone)
            if plan.names is None or plan.reported_cost:
                for k in members:
                    record = records[k]
                    out[k] = self._fill(record, record.attributes, plan)
            else:
                _fill_plain(records, members, plan, out)
        return out

    @staticmethod
    def _fill(record: SpanRecord, attrs: dict[str, str], plan: Plan,
              counts: tuple[int, int, int, int, int] | None = None) -> bool:
        """Sets the record's fields from ``attrs`` by ``plan``: with ``counts`` (read by :meth:`_counts`) when
        given, else read inline when they are integers within the fast bound; False, and nothing set, when not."""
        if counts is None:
            i, o, r, w, x = plan.counts
            try:
                input_tokens = 0 if i is None else int(attrs[i])
                output_tokens = 0 if o is None else int(attrs[o])
                cache_read = 0 if r is None else int(attrs[r])
                cache_write = 0 if w is None else int(attrs[w])
                reasoning = 0 if x is None else int(attrs[x])
            except ValueError:  # not an integer literal: a float, or not a count at all
                return False
            if not 0 <= input_tokens | output_tokens | cache_read | cache_write | reasoning < FAST_BOUND:
                return False
        else:
            input_tokens, output_tokens, cache_read, cache_write, reasoning = counts
        if cache_read + cache_write > input_tokens:
            input_tokens += cache_read + cache_write
        if reasoning > output_tokens:
            output_tokens += reasoning
        record.dialect = plan.dialect
        names = plan.names
        if names is None:
            record.provider, record.operation, record.request_model, record.response_model = (
                ExtractUsage._names(attrs, plan))
        else:
            p, op, rq, rs = names
            record.provider = "" if p is None else attrs[p].lower()
            record.operation = "" if op is None else attrs[op].lower()
            record.request_model = "" if rq is None else attrs[rq]
            record.response_model = "" if rs is None else attrs[rs]
        record.usage = counted_usage(input_tokens, output_tokens, cache_read, cache_write, reasoning)
        if plan.reported_cost:
            reported = _first(attrs, plan.reported_cost)
            if reported:
                record.reported_cost_pusd = parse_reported_cost(reported)
        return True

    @staticmethod
    def _counts(attrs: dict[str, str], keys: tuple[str | None, ...]) -> tuple[int, int, int, int, int]:
        """Every count read by :func:`parse_token_count` (floats written as integers, bounds; ``Drop`` else)."""
        i, o, r, w, x = (0 if key is None else parse_token_count(key, attrs[key]) for key in keys)
        return i, o, r, w, x

    @staticmethod
    def _names(attrs: dict[str, str], plan: Plan) -> tuple[str, str, str, str]:
        """The names when a field has several keys: the first non-empty value of each, in priority order."""
        return (_first(attrs, plan.provider).lower(), _first(attrs, plan.operation).lower(),
                _first(attrs, plan.request_model), _first(attrs, plan.response_model))
