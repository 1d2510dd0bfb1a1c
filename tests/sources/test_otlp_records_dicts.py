"""``otlp_records._dicts``: each span's attribute dict from one walk of the request's keys and values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.sources.otlp_records import _dicts


def _sliced(keys: list[str], values: list[str], ranges: list[tuple[int, int]]) -> list[dict[str, str]]:
    return [dict(zip(keys[b:e], values[b:e], strict=True)) for b, e in ranges]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from("abcd"), st.text(max_size=3)), max_size=30),
       cuts=st.lists(st.integers(0, 30), max_size=12), shuffle=st.booleans())
def test_each_range_gives_the_dict_of_its_slice(rows: list[tuple[str, str]], cuts: list[int], shuffle: bool) -> None:
    """Ranges in order with rows between them (a resource's, a rejected span's), empty ones, repeated keys
    (the last value wins, as in ``dict(zip(...))``), and ranges out of order (the slicing fallback)."""
    keys, values = [k for k, _ in rows], [v for _, v in rows]
    bounds = sorted(min(c, len(rows)) for c in cuts)
    ranges = [(b, e) for b, e in zip(bounds[::2], bounds[1::2], strict=False)]
    if shuffle:
        ranges.reverse()
    begins = np.array([b for b, _ in ranges], np.int64)
    ends = np.array([e for _, e in ranges], np.int64)
    got = _dicts(keys, values, begins, ends)
    assert got == _sliced(keys, values, ranges)
    assert [list(d) for d in got] == [list(d) for d in _sliced(keys, values, ranges)]  # the same order of keys
