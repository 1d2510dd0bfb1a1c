"""Whether a partition's messages were handed over without a hole, before a reader commits past them.

Committing an offset commits every offset below it. The topics this project reads (spans, dead letters)
are never compacted and hold no transaction markers, so their offsets are consecutive: a fetch that hands
over offset 25 after 23 went past 24 by a fault of the client or the broker (seen once: a consumer at the
log's end never handed over one message, committed past it, and 91 spans were lost without a word).

:class:`PartitionOffsets` decides, for one partition, which fetched messages may be taken: those up to the
first hole, with the offset to fetch again from. Only if the log answers past the same offset a second time
(retention deleted it meanwhile) is the hole passed, and named. Pure: the caller seeks, counts and logs.

A hole shows when a later message arrives; one at the end of what a reader reads shows when its position
reached the end but the messages handed over stop short of it: :meth:`PartitionOffsets.admit_end` (the
dead-letter replay at the end offsets it reads up to, the consumer at each partition's high watermark).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Admitted", "PartitionOffsets"]


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a fetch gave one partition's reader.

    Attributes:
        messages: the messages to take, in offset order, none handed over before.
        reread_from: seek the partition back to this offset and fetch again (a hole before the rest of the
            fetch, which is not in ``messages``); None when the fetch had no hole that is read again.
        passed: (first, last) offsets of the holes the log itself has: gone past, their messages lost.
    """

    messages: list[Any]
    reread_from: int | None = None
    passed: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class PartitionOffsets:
    """One partition's reading position as the reader saw it (a new one for each assignment).

    Attributes:
        expected: offset of the next message a fetch should hand over; -1 until the first fetch, which starts
            where the group's committed offset or the reset policy says.
        reread_from: the first offset of the last hole read again (-1: none), so that the same hole found
            again is taken as the log's own instead of read again for ever.
    """

    expected: int = -1
    reread_from: int = -1

    def admit(self, messages: Sequence[Any]) -> Admitted:
        """The messages (objects with an ``offset``) of one fetch, in offset order: see :class:`Admitted`."""
        expected = self.expected
        fresh = list(messages) if expected < 0 else [m for m in messages if m.offset >= expected]
        passed: list[tuple[int, int]] = []
        for i, message in enumerate(fresh):
            if expected >= 0 and message.offset != expected:
                if self.reread_from != expected:
                    self.reread_from = self.expected = expected
                    return Admitted(fresh[:i], expected, passed)
                passed.append((expected, message.offset - 1))  # fetched again from there: the log has nothing there
                self.reread_from = -1
            expected = message.offset + 1
        self.expected = expected
        return Admitted(fresh, None, passed)

    def admit_end(self, end: int) -> Admitted:
        """The reader's position reached ``end`` (an end offset it reads up to): a hole when the messages handed
        over stop short of it, read again once, then passed (as :meth:`admit`). Nothing before the first fetch."""
        if not 0 <= self.expected < end:
            return Admitted([])
        if self.reread_from != self.expected:
            self.reread_from = self.expected
            return Admitted([], self.expected)
        passed = [(self.expected, end - 1)]
        self.reread_from, self.expected = -1, end
        return Admitted([], None, passed)
