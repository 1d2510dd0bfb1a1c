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

A row with every key scanned or kept but some value flagged is named with those values' keys: only they can
hold an entity (a value not flagged passes no gate, so its scanner finds nothing in it and ``mask`` returns
it as it is), so redaction masks those alone (``Redact.mask_flagged``) instead of every value of the row.
That was ~33 us per such row (a hex id or a 13-digit number passes the card gate: ~3% of the benchmark's rows).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from llm_cost_tracker.storage.rows import entry_positions
from llm_cost_tracker.transforms._detectors import Scanner
from llm_cost_tracker.types import AttributeColumns

__all__ = ["Flagged", "gate_rows"]


Flagged = dict[int, list[tuple[str, Scanner]]]
"""Row -> (key, scanner) of each of its slots whose value a gate flagged, for the rows that are not clean only
because of those (every key of the row scanned or kept); in slot order, each key once."""


def gate_rows(columns: AttributeColumns, gate_of: Callable[[str], Scanner | None]) -> tuple[list[bool], Flagged]:
    """Per row of ``columns``: True when redaction leaves its dict, as decoded, as it is; and for the rows that
    are not clean but have every key gated, which of their values were flagged (:data:`Flagged`).

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
    ungated = slot_gate < 0
    bad = ungated.copy()
    values = columns.values
    for number, scanner in enumerate(scanners):
        slots = slot_gate == number
        used = np.zeros(len(values), bool)
        used[columns.value_ids[slots]] = True
        # every distinct value, short ones too: a text too short to hold an entity is not flagged, and
        # leaving it in costs less than measuring each one
        flagged = scanner.flag(list(itertools.compress(values, used.tolist())))
        if flagged:
            hit = np.zeros(len(values), bool)
            hit[np.flatnonzero(used)[flagged]] = True
            bad |= slots & hit[columns.value_ids]
    begins, ends = columns.begins, columns.ends
    bad_before = np.concatenate(([0], np.cumsum(bad)))  # bad slots before each slot
    dirty = bad_before[ends] != bad_before[begins]
    out: Flagged = {}
    if dirty.any():
        ungated_before = np.concatenate(([0], np.cumsum(ungated)))
        rows = np.flatnonzero(dirty & (ungated_before[ends] == ungated_before[begins]))
        counts = (ends[rows] - begins[rows]).astype(np.int64)
        slots = entry_positions(begins[rows].astype(np.int64), counts)  # those rows' slots, row by row, in order
        flagged = bad[slots]
        keys = columns.keys
        named: Flagged = {}  # (row -> its flagged slots' (key, scanner), in slot order, a key as often as its slots)
        for row, k, g in zip(np.repeat(rows, counts)[flagged].tolist(), columns.key_ids[slots[flagged]].tolist(),
                             slot_gate[slots[flagged]].tolist(), strict=True):
            named.setdefault(row, []).append((keys[k], scanners[g]))
        for row, found in named.items():  # a key repeated on the wire is named once (its gate is its key's)
            out[row] = list(dict.fromkeys(found))
    return (~dirty).tolist(), out
