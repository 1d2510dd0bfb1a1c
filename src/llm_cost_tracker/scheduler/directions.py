"""Decoding in alternating directions: one decoded schedule per proposal, every one justified.

Forward-backward improvement (double justification) spends three decoded schedules per proposal:
forward, right-justify, left-justify. The bi-population scheme of Debels & Vanhoucke (2007) spends
one: a generation varies lists taken from the current schedules in one direction (by increasing
start) and decodes them forward; the next takes its lists from those schedules by decreasing finish
(feasible for the reversed precedence graph) and decodes them backward, which right-justifies them,
and so on. A proposal that keeps its parent's list is exactly one justification pass.

The variation operators only need a precedence graph, so on a backward generation they are given
:func:`reversed_arrays`, whose predecessors are the successors. The serial SGS is used as it is.
:func:`justify_once` is the pass on its own (the tests check with it that a pass never lengthens a
schedule).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from llm_cost_tracker.scheduler.parallel_sgs import parallel_sgs
from llm_cost_tracker.scheduler.problem import Arrays, IntArray
from llm_cost_tracker.scheduler.sgs import serial_sgs

__all__ = ["decode", "justify_once", "list_of", "reversed_arrays"]


def reversed_arrays(a: Arrays) -> Arrays:
    """The problem with its precedence graph reversed (for operators on backward lists)."""
    return replace(a, pred_pad=a.succ_pad, succ_pad=a.pred_pad)


def decode(
    order: IntArray, modes: IntArray, a: Arrays, *, backward: bool, parallel: np.ndarray | None = None
) -> IntArray:
    """Start times in real time of lists decoded in their direction (one schedule each).

    A backward list is feasible for the reversed graph; its schedule is right-justified and starts at 0.
    ``parallel`` (a row mask) decodes those rows with the parallel SGS instead (parallel_sgs.py).
    """
    if parallel is None or not parallel.any():
        start = serial_sgs(order, modes, a, reverse=backward)
    else:
        start = np.empty_like(order)
        serial = ~parallel
        start[serial] = serial_sgs(order[serial], modes[serial], a, reverse=backward)
        start[parallel] = parallel_sgs(order[parallel], modes[parallel], a, reverse=backward)
    return _right_start(start, _durations(modes, a)) if backward else start


def justify_once(start: IntArray, modes: IntArray, a: Arrays, *, to_right: bool) -> tuple[IntArray, IntArray]:
    """One justification pass (one schedule each): right-justify a schedule, or left-justify it.

    Returns the new start times (real time) and the lists that reproduce them in the new direction:
    by decreasing finish for a right-justified schedule (a backward list), by increasing start
    otherwise. The makespan never gets worse (the serial SGS keeps the order of the other pass).
    """
    lists = list_of(start, modes, a, backward=to_right)
    return decode(lists, modes, a, backward=to_right), lists


def list_of(start: IntArray, modes: IntArray, a: Arrays, *, backward: bool) -> IntArray:
    """Lists of schedules in a direction: by increasing start, or (backward) by decreasing finish.

    Decoding a schedule's list in the other direction gives a makespan no worse than its own.
    """
    rank = np.broadcast_to(a.rank, start.shape)
    if backward:
        out: IntArray = np.lexsort((-rank, -(start + _durations(modes, a))), axis=1)
    else:
        out = np.lexsort((rank, start), axis=1)
    return out


def _durations(modes: IntArray, a: Arrays) -> IntArray:
    d: IntArray = a.dur[np.arange(a.n)[None, :], modes]
    return d


def _right_start(rstart: IntArray, d: IntArray) -> IntArray:
    """Real start times of a schedule decoded on the reversed graph (it ends at its makespan)."""
    rfinish = rstart + d
    out: IntArray = rfinish.max(axis=1, keepdims=True) - rfinish
    return out
