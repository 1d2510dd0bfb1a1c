"""Which of a stage's keys each record of a request has, read from the request's attribute columns.

Why: the first stages (detect, usage) run record by record through ``Chain._each``, because they may reject a
span. Usage finds its plan by the tuple of the span's keys (``tuple(attrs)`` and a dict look-up hashing and
comparing ~15 strings: ~0.6 us a span) and detect probes up to a dozen keys (~0.4 us). What both decide from
the keys depends only on which of *their* keys a span has, and the wire scan's columns
(``types.AttributeColumns``) answer that for every row at once: one bit per such key, OR-ed over each row's
slots in a few array operations. A stage then decides once per distinct set (a request has a few: one per
instrumentation and options) and reads only the values it needs, record by record as before; what it cannot
settle (a float count, an aggregate span, a span that is not an LLM call...) goes through its ``__call__``,
so the chain's rules (drops, rejections, errors) still decide it span by span.

A record is described while it holds its row's dict with the keys it was decoded with (``AttributeColumns``):
its keys are then exactly its row's slots' keys.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from llm_cost_tracker.types import AttributeColumns, SpanRecord, Transform

__all__ = ["MAX_KEYS", "Flag", "Keyed", "KeyedTransform", "keyed", "row_masks"]

MAX_KEYS = 62
"""Keys a :class:`Keyed` tells apart (a record's set of them is a bit mask in an int64)."""
_ATTRIBUTES = operator.attrgetter("attributes")


Flag = tuple[str, Callable[[str], bool]]
"""(key, predicate): a bit of its own, set for a record whose value of ``key`` satisfies the predicate (asked
once per distinct value of ``key`` in the request)."""


class Keyed:
    """Per record of a list, the set of ``names`` it has and of ``flags`` it satisfies, as a bit mask (bit ``j``:
    ``names[j]``, then one per flag); -1 for a record the columns do not describe (or that an earlier stage did
    not settle)."""

    __slots__ = ("names", "flags", "masks", "_present")

    def __init__(self, names: tuple[str, ...], flags: tuple[Flag, ...], masks: list[int],
                 present: dict[int, tuple[frozenset[str], frozenset[Flag]]] | None = None):
        self.names = names
        self.flags = flags
        self.masks = masks
        self._present = {} if present is None else present

    def present(self, mask: int) -> tuple[frozenset[str], frozenset[Flag]]:
        """The names whose bits ``mask`` has, and the flags."""
        keys = self._present.get(mask)
        if keys is None:
            keys = self._present[mask] = (
                frozenset(name for j, name in enumerate(self.names) if mask >> j & 1),
                frozenset(flag for j, flag in enumerate(self.flags, len(self.names)) if mask >> j & 1))
        return keys

    def restrict(self, keep: Sequence[bool]) -> Keyed:
        """The same records, with only those where ``keep`` is true still described."""
        return Keyed(self.names, self.flags, [m if k else -1 for m, k in zip(self.masks, keep, strict=True)],
                     self._present)


def row_masks(slot_bits: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each row's slots' bits OR-ed (row ``i``'s slots are ``begins[i]:ends[i]``, rows in increasing order)."""
    slot_bits = np.append(slot_bits, 0)  # (a last slot, 0: where the last row's end points)
    bounds = np.empty(2 * len(begins), np.int64)
    bounds[0::2] = begins
    bounds[1::2] = ends
    masks = np.bitwise_or.reduceat(slot_bits, bounds)[0::2]
    masks[ends == begins] = 0  # (reduceat gives an empty row its first slot)
    return masks


def keyed(records: list[SpanRecord], columns: AttributeColumns, names: tuple[str, ...],
          flags: tuple[Flag, ...] = ()) -> Keyed | None:
    """Which of ``names`` each of ``records`` (any of the request's, in any order) has, and which ``flags`` it
    satisfies, from ``columns``; None when that is more than :data:`MAX_KEYS` bits (the stages then run per record)."""
    if len(names) + len(flags) > MAX_KEYS:
        return None
    n = len(records)
    if not len(columns.begins):
        return Keyed(names, flags, [-1] * n)
    bit = {name: 1 << j for j, name in enumerate(names)}
    weights = np.array([bit.get(key, 0) for key in columns.keys] + [0], np.int64)
    slots = weights[columns.key_ids]
    values = columns.values
    for j, (key, predicate) in enumerate(flags, len(names)):
        if key not in columns.keys:
            continue
        with_key = np.flatnonzero(columns.key_ids == columns.keys.index(key))
        ids = columns.value_ids[with_key]
        satisfying = [v for v in set(ids.tolist()) if predicate(values[v])]
        if satisfying:
            slots[with_key[np.isin(ids, satisfying)]] |= 1 << j
    masks = row_masks(slots, columns.begins, columns.ends)
    sizes = columns.sizes
    if n == len(columns.dicts):  # the records of the request, in its order (the first stages): row i is record i
        out = [m if size == len(a) and a is d else -1
               for m, a, d, size in zip(masks.tolist(), map(_ATTRIBUTES, records), columns.dicts, sizes, strict=True)]
    else:  # the columns keep every row's dict alive: an id names one of them
        where = columns.row_of()
        by_row = masks.tolist()
        out = []
        for a in map(_ATTRIBUTES, records):
            row = where.get(id(a))
            out.append(-1 if row is None or sizes[row] != len(a) else by_row[row])
    return Keyed(names, flags, out)


@runtime_checkable
class KeyedTransform(Transform, Protocol):
    """A per-record stage that can also settle records from which of its keys they have (:class:`Keyed`).

    ``settle`` does to each described record (mask >= 0) it can decide what ``__call__`` would, when the record
    passes (no ``Drop``, no error), and returns per record whether it did; it leaves every other record as it
    was, for the chain to run ``__call__`` on it. If it raises, the chain runs ``__call__`` on every record it
    was given: a settled record must be one that ``__call__`` then leaves as it is (detect and usage only read
    attributes and set fields from them)."""

    keyed_keys: frozenset[str]
    """The attribute keys whose presence ``settle`` decides by (it may read other values of a record)."""
    keyed_flags: tuple[Flag, ...]
    """The flags it decides by."""

    def settle(self, records: list[SpanRecord], keyed: Keyed) -> list[bool]: ...
