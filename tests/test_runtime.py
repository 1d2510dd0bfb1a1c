"""The service's garbage-collector pace (``runtime.tune_gc``): slow enough that a batch of live records is not
walked for nothing, and still collecting what reference counting cannot free."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from llm_cost_tracker.runtime import GC_THRESHOLDS, tune_gc


class _Node:
    """A container object that can hold itself (a cycle: only the collector frees it)."""

    def __init__(self) -> None:
        self.me: _Node | None = self


@pytest.fixture
def tuned() -> Iterator[None]:
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _garbage_cycle() -> list[bool]:
    """A cycle no name refers to any more; the list turns true once the collector has freed it."""
    freed: list[bool] = []
    node = _Node()
    weakref.finalize(node, freed.append, True)
    del node
    return freed


def test_a_cycle_waits_for_the_threshold_then_is_collected(tuned: None) -> None:
    young = GC_THRESHOLDS[0]
    assert young > 20_000, "a young collection per batch of live records again"
    freed = _garbage_cycle()
    live = [[] for _ in range(young // 10)]  # container objects alive, like a batch's records
    assert not freed, "collected long before the threshold: the default pace (700) is back"
    live += [[] for _ in range(young)]  # past the threshold: the next allocation sets a collection off
    assert freed == [True], "a cycle was not collected past the threshold"
    assert len(live) > young


def test_tune_gc_freezes_start_up_and_applies_the_thresholds(tuned: None) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
