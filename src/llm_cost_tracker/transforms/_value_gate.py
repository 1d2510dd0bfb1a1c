"""Which records of a wire-scanned request redaction can leave as they are, decided once per distinct value.

Per record, redaction asks its scanner's gate whether the values it scans (and, for card numbers, the
values it keeps) may hold an entity, with one regex search of them joined, and returns the record's dict
untouched when the answer is no: the common case (``Redact.redact_attributes``). That is ~3.5 us of
Python per span, most of it gathering the values one by one. The gate's answer for a value does not depend
on the span it is in, and most values repeat across a request (providers, models, operations, finish
reasons), so here the question is asked once per distinct value of the request, over the request's
attribute columns (``types.AttributeColumns``), and the answers reach the rows by array indexing.

The answer is sound, not exact: a row is called clean only when every key of it is scanned or kept
(no rule, content or dropped key) and no value its key sends to a gate is flagged by
``Scanner.flag``, which flags at least what the per-record gate would find. A row not called clean
goes through the per-record path, which decides exactly; so the records that come out are the same
either way (``tests/transforms/test_redact_columns.py`` checks it on generated requests).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numpy as np

from llm_cost_tracker.transforms._detectors import Scanner
from llm_cost_tracker.types import AttributeColumns

__all__ = ["clean_rows"]


def clean_rows(columns: AttributeColumns, gate_of: Callable[[str], Scanner | None]) -> list[bool]:
    """Per row of ``columns``: True when redaction leaves its dict, as decoded, as it is.

    ``gate_of(key)`` is the scanner whose gate the values of ``key`` go through (the scan's for a scanned
    key, cards' for a kept one), or None when the key is neither: such a row is never clean.
    """
    scanners: list[Scanner] = []
    code: dict[int, int] = {}  # id(scanner) -> its number; -1: not a gated key
    per_key = np.empty(len(columns.keys), np.int64)
    for i, key in enumerate(columns.keys):
        scanner = gate_of(key)
        if scanner is None:
            per_key[i] = -1
            continue
        number = code.get(id(scanner))
        if number is None:
            number = code[id(scanner)] = len(scanners)
            scanners.append(scanner)
        per_key[i] = number
    slot_gate = per_key[columns.key_ids]
    bad = slot_gate < 0
    values = columns.values
    for number, scanner in enumerate(scanners):
        slots = slot_gate == number
        used = np.zeros(len(values), bool)
        used[columns.value_ids[slots]] = True
        ids = np.flatnonzero(used)
        # every distinct value, short ones too: a text too short to hold an entity is not flagged, and
        # leaving it in costs less than measuring each one
        flagged = scanner.flag(operator.itemgetter(*ids.tolist())(values) if len(ids) > 1 else
                               [values[i] for i in ids.tolist()])
        if flagged:
            hit = np.zeros(len(values), bool)
            hit[ids[flagged]] = True
            bad |= slots & hit[columns.value_ids]
    bad_before = np.concatenate(([0], np.cumsum(bad)))  # bad slots before each slot
    return (bad_before[columns.ends] == bad_before[columns.begins]).tolist()  # type: ignore[no-any-return]
