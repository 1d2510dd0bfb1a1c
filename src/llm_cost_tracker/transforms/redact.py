"""Redaction: the last per-record stage, so no prompt text or secret leaves the receiver in clear.

Every attribute (span and resource) gets one action, decided from its key and cached:

1. a rule of ``[redaction.modes]`` matching the key (exact names before globs, longer globs first);
2. a key in the allowlist: stored as it is;
3. a known content attribute (:data:`CONTENT_ATTRIBUTES` plus ``content``): ``content_mode``;
4. any other key under a content prefix (:data:`CONTENT_PREFIXES`): dropped (fails closed);
5. any other string attribute: scanned for secrets (``scan = "secrets"``, the default), for every
   detector (``"all"``) or stored as it is (``"off"``).

Whatever the mode, card numbers are never stored in clear (PCI DSS): kept and ``scan = "off"`` values
are still searched for them, and ``mask`` always masks them. A key that holds a secret or a card
number is not a key: its attribute is dropped (counted under the detector's name).

Modes: ``drop`` removes the attribute, ``mask`` replaces detected entities by typed placeholders
(``<EMAIL>``), ``hash`` stores a keyed HMAC-SHA256 (equal values still group; needs
``redaction_hmac_key``), ``keep`` stores the value as it is. Removals are counted in
``llm_redactions_total{detector,mode}``; values are never counted, logged or kept. See
``docs/redaction.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby, repeat
from operator import attrgetter
from typing import Any

from llm_cost_tracker.config import ConfigError, PrivacyConfig, Settings, config_sections
from llm_cost_tracker.transforms._detectors import (
    CARD,
    DETECTOR_NAMES,
    NEVER_CLEAR,
    SECRET_DETECTORS,
    Scanner,
)
from llm_cost_tracker.transforms._value_gate import Flagged, gate_rows
from llm_cost_tracker.types import AttributeColumns, SpanRecord

MODES = ("drop", "mask", "hash", "keep")
SCAN_CHOICES = ("secrets", "all", "off")

CONTENT_ATTRIBUTES = (
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.prompt*", "gen_ai.completion*", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "llm.input_messages*", "llm.output_messages*", "llm.prompts*", "llm.completions*",
    "llm.prompt_template.variables*", "input.value", "output.value",
    "traceloop.entity.input", "traceloop.entity.output", "retrieval.documents*", "embedding.embeddings*",
)
"""Attributes that carry message content (``*`` matches any run of characters)."""

CONTENT_PREFIXES = (
    "gen_ai.input.", "gen_ai.output.", "gen_ai.system_instructions", "gen_ai.prompt", "gen_ai.completion",
    "gen_ai.tool.call.", "llm.input_messages", "llm.output_messages", "llm.prompts", "llm.completions",
    "llm.prompt_template.", "input.", "output.", "traceloop.entity.input", "traceloop.entity.output",
    "retrieval.", "embedding.",
)
"""Namespaces of content: a key here that no rule, allowlist entry or content pattern names is dropped."""

DEFAULT_ALLOW = ("gen_ai.output.type", "gen_ai.tool.call.id", "input.mime_type", "output.mime_type",
                 "llm.prompt_template.version", "embedding.model_name")
"""Known non-content keys under content prefixes, stored as they are."""

TABLE_KEYS = frozenset({"content_mode", "scan", "content", "allow", "modes", "detectors"})
HASH_PREFIX = "hmac-sha256:"
MIN_KEY_LENGTH = 16

# actions
_KEEP, _DROP, _MASK, _HASH, _SCAN, _UNKNOWN = range(6)
_MODE_ACTION = {"keep": _KEEP, "drop": _DROP, "mask": _MASK, "hash": _HASH}
_CACHE_LIMIT = 8192
_CACHED_KEY_CHARS = 1024  # longer keys are decided every time, never remembered (the decoder bounds keys)
_PLAN_LIMIT = 1024
_PLAN_KEY_CHARS = 16_384  # key tuples with more characters in all are planned every time (plans: a few MiB)


_ATTRIBUTES = attrgetter("attributes")
_RESOURCE = attrgetter("resource_attributes")


def _to_redact(records: list[SpanRecord], attributes: list[dict[str, str]], columns: AttributeColumns,
               clean: list[bool]) -> list[tuple[SpanRecord, int]]:
    """The records that the columns' gate does not leave as they are, each with its row (-1: not described).

    A row describes its record while the record holds that very dict (the columns keep every row's dict alive,
    so no other object has its id) with no key added by a stage since it was decoded. The records of a request
    in its order (no span dropped before) are its rows one to one: then no ``id`` look-up per record."""
    sizes = columns.sizes
    if len(records) == len(columns.dicts):
        rows: list[int] = [row if a is d and len(a) == size else -1 for row, (a, d, size)
                           in enumerate(zip(attributes, columns.dicts, sizes, strict=True))]
    else:
        where = columns.row_of()
        rows = [-1 if (row := where.get(id(a))) is None or len(a) != sizes[row] else row for a in attributes]
    return [(record, row) for record, row in zip(records, rows, strict=True) if row < 0 or not clean[row]]


class RedactionConfigError(ConfigError):
    """The ``[redaction]`` table or the redaction settings are unusable (every problem listed)."""


@dataclass(frozen=True)
class RedactionConfig:
    """Resolved redaction policy.

    Args:
        content_mode: mode of the known content attributes without a rule.
        scan: what other string attributes are scanned for: ``secrets``, ``all`` detectors, ``off``.
        content: more content attribute patterns (each also a content prefix).
        allow: more keys stored as they are (added to :data:`DEFAULT_ALLOW`).
        modes: (pattern, mode) rules.
        detectors: detectors that mask mode and scanning use.
        hmac_key: key of mode ``hash``.
    """

    content_mode: str = "drop"
    scan: str = "secrets"
    content: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    modes: tuple[tuple[str, str], ...] = ()
    detectors: tuple[str, ...] = DETECTOR_NAMES
    hmac_key: str = field(default="", repr=False)

    def problems(self) -> list[str]:
        """Every problem of this policy (empty when usable)."""
        out: list[str] = []
        if self.content_mode not in MODES:
            out.append(f"redaction.content_mode: must be one of {', '.join(MODES)}, got {self.content_mode!r}")
        if self.scan not in SCAN_CHOICES:
            out.append(f"redaction.scan: must be one of {', '.join(SCAN_CHOICES)}, got {self.scan!r}")
        for pattern, mode in self.modes:
            if mode not in MODES:
                out.append(f"redaction.modes.{pattern}: must be one of {', '.join(MODES)}, got {mode!r}")
        for name, patterns in (("content", self.content), ("allow", self.allow),
                               ("modes", tuple(p for p, _ in self.modes))):
            for p in patterns:
                if not p.strip("*"):
                    out.append(f"redaction.{name}: pattern {p!r} matches every attribute; name them")
        for d in self.detectors:
            if d not in DETECTOR_NAMES:
                out.append(f"redaction.detectors: unknown detector {d!r} (known: {', '.join(DETECTOR_NAMES)})")
        uses_hash = self.content_mode == "hash" or any(m == "hash" for _, m in self.modes)
        if uses_hash and not self.hmac_key:
            out.append("redaction: mode 'hash' needs a key: set redaction_hmac_key (LCT_REDACTION_HMAC_KEY)")
        elif self.hmac_key and len(self.hmac_key) < MIN_KEY_LENGTH:
            out.append(f"redaction_hmac_key: must be at least {MIN_KEY_LENGTH} characters")
        return out

    def validate(self) -> RedactionConfig:
        """Return self, or raise :class:`RedactionConfigError` listing every problem."""
        problems = self.problems()
        if problems:
            raise RedactionConfigError(problems)
        return self


def _strings(raw: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        problems.append(f"{where}: expected a list of non-empty strings, got {raw!r}")
        return ()
    return tuple(raw)


def parse_redaction(sections: Mapping[str, Any], hmac_key: str = "") -> RedactionConfig:
    """The policy in the ``[redaction]`` table of ``sections`` (see :func:`config.config_sections`).

    Args:
        sections: the config file's tables; no ``redaction`` table means the defaults.
        hmac_key: the ``redaction_hmac_key`` setting.

    Raises:
        RedactionConfigError: listing every problem found.
    """
    problems: list[str] = []
    raw = sections.get("redaction", {})
    if not isinstance(raw, dict):
        raise RedactionConfigError(["redaction: expected a table [redaction]"])
    for key in sorted(raw.keys() - TABLE_KEYS):
        problems.append(f"redaction: unknown key {key!r} (known: {', '.join(sorted(TABLE_KEYS))})")
    kwargs: dict[str, Any] = {"hmac_key": hmac_key}
    for key in ("content_mode", "scan"):
        if key in raw:
            if isinstance(raw[key], str):
                kwargs[key] = raw[key]
            else:
                problems.append(f"redaction.{key}: expected a string, got {raw[key]!r}")
    for key in ("content", "allow", "detectors"):
        if key in raw:
            kwargs[key] = _strings(raw[key], f"redaction.{key}", problems)
    modes = raw.get("modes", {})
    if not isinstance(modes, dict):
        problems.append("redaction.modes: expected a table of \"pattern\" = \"mode\"")
    else:
        kwargs["modes"] = tuple((str(p), str(m)) for p, m in modes.items())
    config = RedactionConfig(**kwargs)
    problems.extend(config.problems())
    if problems:
        raise RedactionConfigError(problems)
    return config


def load_redaction(settings: Settings) -> RedactionConfig:
    """The policy of ``settings``: its config file's ``[redaction]`` table and ``redaction_hmac_key``."""
    config_file = getattr(settings, "config_file", "")
    return parse_redaction(config_sections(config_file) if config_file else {},
                           getattr(settings, "redaction_hmac_key", ""))


class _Patterns:
    """Attribute-key patterns (``*`` = any characters): exact names in a set, globs as one regex."""

    __slots__ = ("exact", "_glob")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.exact = frozenset(p for p in patterns if "*" not in p)
        globs = [p for p in patterns if "*" in p]
        self._glob = re.compile("|".join(".*".join(map(re.escape, g.split("*"))) for g in globs)) if globs else None

    def __contains__(self, key: str) -> bool:
        return key in self.exact or (self._glob is not None and self._glob.fullmatch(key) is not None)


class Redact:
    """Transform: drops, masks, hashes or keeps each attribute by policy (never drops the record).

    Args:
        config: the policy (validated here; defaults: drop content, mask secrets everywhere else).
        metrics: where removals are counted (``Metrics.redactions``); None counts nothing.
    """

    __slots__ = ("config", "_rules", "_allow", "_content", "_prefixes", "_mode", "_scanner", "_scan_scanner",
                 "_cards", "_keys", "_hmac", "_cache", "_plans", "_counter", "_children", "_last_resource")

    def __init__(self, config: RedactionConfig | None = None, metrics: Any = None) -> None:
        self.config = config = (config or RedactionConfig()).validate()
        # rules: exact names first, then globs with the most literal characters first
        exact = {p: m for p, m in config.modes if "*" not in p}
        globs = sorted(((p, m) for p, m in config.modes if "*" in p), key=lambda pm: -len(pm[0].replace("*", "")))
        self._rules = (exact, [(re.compile(".*".join(map(re.escape, p.split("*")))), _MODE_ACTION[m])
                               for p, m in globs])
        self._allow = _Patterns(DEFAULT_ALLOW + config.allow)
        self._content = _Patterns(CONTENT_ATTRIBUTES + config.content)
        self._prefixes = CONTENT_PREFIXES + tuple(p.split("*", 1)[0] for p in config.content)
        self._mode = _MODE_ACTION[config.content_mode]
        self._scanner = Scanner((*config.detectors, CARD))
        scan = {"all": config.detectors, "secrets": tuple(d for d in config.detectors if d in SECRET_DETECTORS),
                "off": ()}[config.scan]
        self._scan_scanner = Scanner((*scan, CARD))  # cards whatever the policy: never stored in clear
        self._cards = Scanner((CARD,))
        """For kept values: only card numbers."""
        self._keys = Scanner(NEVER_CLEAR)
        """For attribute keys: a key holding a secret or a card number drops its attribute."""
        self._hmac = hmac.new(config.hmac_key.encode(), digestmod=hashlib.sha256) if config.hmac_key else None
        self._cache: dict[str, tuple[int, str]] = {}
        self._plans: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]] | bool] = {}
        """Key tuple -> its plan (:meth:`_plan`); spans of one instrumentation repeat their keys."""
        self._counter = getattr(metrics, "redactions", None)
        self._children: dict[tuple[str, str], Any] = {}
        self._last_resource: tuple[dict[str, str], dict[str, str]] | None = None

    @classmethod
    def from_config(cls, config: PrivacyConfig, tables: Mapping[str, Any], metrics: Any = None) -> Redact:
        """Built from its section (the HMAC key) and the config file's tables (``[redaction]``); raises
        :class:`RedactionConfigError` listing every problem of the policy."""
        return cls(parse_redaction(tables, config.redaction_hmac_key), metrics)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Any = None) -> Redact:
        """:meth:`from_config` for whole settings (tools and tests): their config file read here."""
        return cls(load_redaction(settings), metrics)

    def decide(self, key: str) -> tuple[int, str]:
        """The action for attribute ``key`` and the detector label its whole-value removals count under."""
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        if len(key) >= self._keys.min_length and (found := self._keys.find(key.encode("utf-8", "surrogatepass"),
                                                                            key)):
            decision = (_DROP, found[0][2].name)
        else:
            decision = self._decide(key)
        if len(key) <= _CACHED_KEY_CHARS:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def _decide(self, key: str) -> tuple[int, str]:
        """:meth:`decide` for a key that holds nothing secret."""
        label = "content" if (key in self._content or key.startswith(self._prefixes)) else "attribute"
        exact, globs = self._rules
        mode = exact.get(key)
        action = _MODE_ACTION[mode] if mode is not None else None
        if action is None:
            for regex, act in globs:
                if regex.fullmatch(key):
                    action = act
                    break
        if action is None:
            if key in self._allow:
                action = _KEEP
            elif key in self._content:
                action = self._mode
            elif key.startswith(self._prefixes):
                action, label = _UNKNOWN, "unknown_content"
            else:
                action = _SCAN if self.config.scan != "off" else _KEEP
        return action, label

    def _plan(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | bool:
        """For a tuple of keys: (keys to scan, keys kept) when every key is one or the other, else False
        (cached when the keys are not too long in all)."""
        actions = [self.decide(k)[0] for k in keys]
        plan: tuple[tuple[str, ...], tuple[str, ...]] | bool = False
        if all(a == _KEEP or a == _SCAN for a in actions):
            plan = (tuple(k for k, a in zip(keys, actions, strict=True) if a == _SCAN),
                    tuple(k for k, a in zip(keys, actions, strict=True) if a == _KEEP))
        if sum(map(len, keys)) <= _PLAN_KEY_CHARS:
            if len(self._plans) >= _PLAN_LIMIT:
                self._plans.clear()
            self._plans[keys] = plan
        return plan

    def hash_value(self, value: str) -> str:
        """The keyed hash stored in place of ``value`` in mode ``hash``."""
        assert self._hmac is not None
        h = self._hmac.copy()
        h.update(value.encode("utf-8", "surrogatepass"))
        return HASH_PREFIX + h.hexdigest()

    def redact_attributes(self, attrs: dict[str, str], counts: dict[tuple[str, str], int]) -> dict[str, str]:
        """The attributes to store; adds removals to ``counts`` keyed by (detector, mode).

        Values to scan are first looked at together: one search of the scanner's gate over them
        joined, and only when it finds an anchor is each of them scanned; kept values the same way,
        for card numbers only. When every key is kept or scanned (the plan of the key tuple says so)
        and the gates find nothing, ``attrs`` itself is returned: nothing in it changes.
        """
        keys = tuple(attrs)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plan(keys)
        scanner = self._scan_scanner
        if plan is not False:
            scan, kept = plan  # type: ignore[misc]
            min_length = scanner.min_length
            values = [v for k in scan if len(v := attrs[k]) >= min_length]
            hit = bool(values) and scanner.maybe(values[0] if len(values) == 1 else "\n".join(values))
            cards = self._cards
            values = [v for k in kept if len(v := attrs[k]) >= cards.min_length]
            card_hit = bool(values) and cards.maybe("\n".join(values))
            if not hit and not card_hit:
                return attrs
            out = dict(attrs)
            entities: dict[str, int] = {}
            for key in scan if hit else ():
                out[key] = scanner.mask(out[key], entities)
            for key in kept if card_hit else ():
                out[key] = cards.mask(out[key], entities)
            if not entities:
                return attrs  # the gates only said "maybe": nothing changed
            for name, n in entities.items():
                counts[(name, "mask")] = counts.get((name, "mask"), 0) + n
            return out
        out = {}
        entities = {}
        cache = self._cache
        min_length = scanner.min_length
        to_scan: list[str] | None = None
        to_check: list[str] | None = None
        for key, value in attrs.items():
            decision = cache.get(key)
            if decision is None:
                decision = self.decide(key)
            action = decision[0]
            if action == _SCAN:
                out[key] = value
                if len(value) >= min_length:
                    if to_scan is None:
                        to_scan = [key]
                    else:
                        to_scan.append(key)
            elif action == _KEEP:
                out[key] = value
                if len(value) >= 13:  # long enough for a card number
                    to_check = [key] if to_check is None else [*to_check, key]
            elif action == _MASK:
                out[key] = self._scanner.mask(value, entities)
            elif action == _HASH:
                out[key] = self.hash_value(value)
                label = (decision[1], "hash")
                counts[label] = counts.get(label, 0) + 1
            else:  # _DROP, _UNKNOWN
                label = (decision[1], "drop")
                counts[label] = counts.get(label, 0) + 1
        if to_check is not None and self._cards.maybe("\n".join([out[k] for k in to_check])):
            for key in to_check:
                out[key] = self._cards.mask(out[key], entities)
        if to_scan is not None:
            joined = out[to_scan[0]] if len(to_scan) == 1 else "\n".join([out[k] for k in to_scan])
            if scanner.maybe(joined):
                for key in to_scan:
                    out[key] = scanner.mask(out[key], entities)
        for name, n in entities.items():
            counts[(name, "mask")] = counts.get((name, "mask"), 0) + n
        return out

    def __call__(self, record: SpanRecord) -> SpanRecord:
        counts: dict[tuple[str, str], int] = {}
        record.attributes = self.redact_attributes(record.attributes, counts)
        self._resource(record, counts)
        self.count(counts)
        return record

    def process(self, records: list[SpanRecord], columns: AttributeColumns | None = None) -> list[SpanRecord]:
        """``records`` redacted in place, as ``__call__`` would one by one; with the request's ``columns``, the
        records they show clean (``_value_gate``) keep their dict without a look at each value, and those with
        every key scanned or kept have only the values the gates flagged masked (:meth:`mask_flagged`).

        All or nothing: if one record fails, every record gets its attributes back and nothing is counted,
        so the chain's re-run record by record redacts each exactly once (a hash is not hashed again)."""
        attributes = list(map(_ATTRIBUTES, records))
        resources = list(map(_RESOURCE, records))
        flagged: Flagged = {}
        todo: list[tuple[SpanRecord, int]] = list(zip(records, repeat(-1)))
        if columns is not None and records:
            clean, flagged = gate_rows(columns, self.gate_of)
            todo = _to_redact(records, attributes, columns, clean)
        counts: dict[tuple[str, str], int] = {}
        last_resource = self._last_resource
        try:
            for record, row in todo:
                attrs = record.attributes
                found = flagged.get(row) if row >= 0 else None
                record.attributes = (self.redact_attributes(attrs, counts) if found is None else
                                     self.mask_flagged(attrs, found, counts))
            # the spans of one resource share its attribute dict (and come together): redact it once per run
            at = 0
            for _, run in groupby(resources, key=id):
                size = len(list(run))
                resource = resources[at]
                redacted = self._redacted_resource(resource, counts)
                if redacted is not resource:
                    for record in records[at:at + size]:
                        record.resource_attributes = redacted
                at += size
        except BaseException:
            for record, attrs, resource in zip(records, attributes, resources, strict=True):
                record.attributes, record.resource_attributes = attrs, resource
            self._last_resource = last_resource
            raise
        self.count(counts)
        return records

    @staticmethod
    def mask_flagged(attrs: dict[str, str], found: list[tuple[str, Scanner]],
                      counts: dict[tuple[str, str], int]) -> dict[str, str]:
        """:meth:`redact_attributes` of a dict whose keys are all scanned or kept, when only the values of the keys
        in ``found`` (each with its scanner) passed a gate: a value that passes none holds nothing its scanner
        finds, so masking it (as the plan path does when its row's gate passes) would leave it as it is."""
        out: dict[str, str] | None = None
        entities: dict[str, int] = {}
        for key, scanner in found:
            value = attrs[key]
            masked = scanner.mask(value, entities)
            if masked is not value:
                if out is None:
                    out = dict(attrs)
                out[key] = masked
        if out is None or not entities:
            return attrs  # the gates only said "maybe": nothing changed
        for name, n in entities.items():
            counts[(name, "mask")] = counts.get((name, "mask"), 0) + n
        return out

    def gate_of(self, key: str) -> Scanner | None:
        """The scanner whose gate the values of ``key`` go through when its record's plan is "scan or keep"
        (``redact_attributes``), or None when ``key`` is neither."""
        action = self.decide(key)[0]
        return self._scan_scanner if action == _SCAN else self._cards if action == _KEEP else None

    def _resource(self, record: SpanRecord, counts: dict[tuple[str, str], int]) -> None:
        record.resource_attributes = self._redacted_resource(record.resource_attributes, counts)

    def _redacted_resource(self, resource: dict[str, str], counts: dict[tuple[str, str], int]) -> dict[str, str]:
        """``resource`` redacted. The spans of one resource share its attribute dict: the last one redacted is
        remembered, so it is redacted once, not once per span."""
        last = self._last_resource  # one tuple read: atomic across the handler threads
        if last is not None and last[0] is resource:
            return last[1]
        redacted = self.redact_attributes(resource, counts)
        self._last_resource = (resource, redacted)
        return redacted

    def count(self, counts: dict[tuple[str, str], int]) -> None:
        if counts and self._counter is not None:
            for labels, n in counts.items():
                child = self._children.get(labels)
                if child is None:
                    child = self._children[labels] = self._counter.labels(detector=labels[0], mode=labels[1])
                child.inc(n)
