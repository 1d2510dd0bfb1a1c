"""The service's garbage-collector pace (``runtime.tune_gc``): slow enough that a batch of live records is not
walked for nothing, and still collecting what reference counting cannot free; and the C allocator's fixed mmap
threshold (``runtime.tune_malloc``)."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from llm_cost_tracker.runtime import GC_THRESHOLDS, MMAP_THRESHOLD, tune_gc


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


_RETAINED = """
import sys
from llm_cost_tracker.runtime import MMAP_THRESHOLD, tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
def rss():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) >> 10
size = MMAP_THRESHOLD + (1 << 20)
big = bytearray(4 * size)
del big  # a freed mmapped block: glibc's moving threshold rises past ``size``
before = rss()
blocks = [bytearray(size) for _ in range(16)]
del blocks[:-1]  # the last stays: what was freed below it in a heap cannot be handed back
print(rss() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc/self/status: Linux")
def test_big_blocks_go_back_to_the_system_when_freed() -> None:
    """With the threshold fixed, blocks over it are mapped on their own and handed back when freed; with glibc's
    moving threshold (after one bigger block was freed) they come from the heap, which keeps them."""
    retained = {mode: int(subprocess.run([sys.executable, "-c", _RETAINED, mode], check=True, capture_output=True,
                                         text=True).stdout) for mode in ("default", "tuned")}
    size_mib = (MMAP_THRESHOLD >> 20) + 1
    assert retained["default"] >= 10 * size_mib  # (what the test shows: without it, most of the 15 are kept)
    assert retained["tuned"] <= 2 * size_mib
