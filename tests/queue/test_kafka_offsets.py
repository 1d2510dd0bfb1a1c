"""``kafka_offsets.PartitionOffsets``: a reader takes a partition's messages only without a hole; a hole is read
again once and passed only when the log answers past it a second time."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.queue.kafka_offsets import Admitted, PartitionOffsets


@dataclass(frozen=True)
class _Message:
    offset: int


def _messages(*offsets: int) -> list[_Message]:
    return [_Message(o) for o in offsets]


def _offsets(messages: list[_Message]) -> list[int]:
    return [m.offset for m in messages]


def test_consecutive_fetches_are_taken_whole_and_a_refetch_only_once() -> None:
    offsets = PartitionOffsets()
    assert _offsets(offsets.admit(_messages(7, 8, 9)).messages) == [7, 8, 9]  # the first fetch starts anywhere
    admitted = offsets.admit(_messages(8, 9, 10, 11))  # 8 and 9 again (a fetch position set back): taken once
    assert (_offsets(admitted.messages), admitted.reread_from, admitted.passed) == ([10, 11], None, [])


def test_a_hole_is_read_again_and_nothing_is_passed_when_it_comes() -> None:
    offsets = PartitionOffsets()
    offsets.admit(_messages(0, 1))
    admitted = offsets.admit(_messages(2, 4, 5))
    assert (_offsets(admitted.messages), admitted.reread_from, admitted.passed) == ([2], 3, [])
    admitted = offsets.admit(_messages(3, 4, 5))
    assert (_offsets(admitted.messages), admitted.reread_from, admitted.passed) == ([3, 4, 5], None, [])


def test_a_hole_the_log_has_is_passed_on_the_second_answer_past_it_and_named() -> None:
    offsets = PartitionOffsets()
    offsets.admit(_messages(0))
    assert offsets.admit(_messages(3, 4)).reread_from == 1  # a fetch that starts past the next offset
    admitted = offsets.admit(_messages(3, 4))  # the log answers past 1 again: 1 and 2 are not there
    assert (_offsets(admitted.messages), admitted.reread_from, admitted.passed) == ([3, 4], None, [(1, 2)])
    admitted = offsets.admit(_messages(6))  # a new hole is read again first, like any other
    assert (admitted.messages, admitted.reread_from) == ([], 5)


def test_a_reader_that_stops_at_an_end_offset_reads_a_missing_tail_again() -> None:
    offsets = PartitionOffsets()
    assert offsets.admit_end(5).messages == [] and offsets.admit_end(5).reread_from is None  # nothing fetched yet
    offsets.admit(_messages(0, 1, 2))
    assert offsets.admit_end(3) == Admitted([])  # handed over up to its end
    assert offsets.admit_end(5).reread_from == 3  # its position is at 5, the messages stopped at 2
    offsets.admit(_messages(3, 4))
    assert offsets.admit_end(5) == Admitted([])
    assert offsets.admit_end(8).reread_from == 5
    assert offsets.admit_end(8).passed == [(5, 7)]  # read again, still short: the log's own


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 60), missing=st.sets(st.integers(0, 59), max_size=15),
       faults=st.lists(st.tuples(st.integers(0, 10), st.booleans()), max_size=40), page=st.integers(1, 7))
def test_a_faulty_fetcher_loses_nothing_and_only_the_logs_holes_are_passed(
        size: int, missing: set[int], faults: list[tuple[int, bool]], page: int) -> None:
    """A log of ``size`` offsets of which ``missing`` are gone, read up to its end by a fetcher that now and then
    leaves a message out of a fetch and moves on past it (not in the first fetch, which starts wherever the
    group does, and never twice in a row: a second fault on the refetch is what a hole of the log looks like).
    Every message the log has is taken once, in order, and the holes passed are exactly the log's own after
    its first message."""
    present = [o for o in range(size) if o not in missing]
    offsets = PartitionOffsets()
    taken: list[int] = []
    passed: list[tuple[int, int]] = []
    position, fault, refetch = 0, iter(faults), False
    for _ in range(10 * size + 10):
        fetch = [o for o in present if o >= position][:page]
        at_end = not fetch
        if not at_end:
            position = fetch[-1] + 1
            drop, start_past = next(fault, (99, False))
            if offsets.expected >= 0 and not refetch and drop < len(fetch) and (drop > 0 or start_past):
                fetch = fetch[:drop] + fetch[drop + 1:]  # handed over without one message; the position moved on
            admitted = offsets.admit(_messages(*fetch))
        else:
            position = size
            admitted = offsets.admit_end(size)
        taken += _offsets(admitted.messages)
        passed += admitted.passed
        refetch = admitted.reread_from is not None
        if refetch:
            position = admitted.reread_from
        elif at_end:
            break
    assert taken == present
    ends = [*present, size] if present else []
    holes = [(before + 1, after - 1) for before, after in zip(ends[:-1], ends[1:], strict=True) if after > before + 1]
    assert passed == holes
