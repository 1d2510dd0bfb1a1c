"""Hot loops compiled with numba the first time a process runs them.

Written first for the scheduler: the serial SGS (``sgs.py``) and the mode repair (``modes.py``) are loops
whose every step depends on the one before, so numpy cannot shorten them: vectorized across replicas they
cost tens of numpy calls per step, whose interpreter overhead dominates (issue 20). Written as plain loops
over int64 and float64 arrays and compiled, they run ~10-20x faster with the same results to the bit.
The ingest path uses it the same way for the OTLP wire scan (``sources/otlp_scan.py``) and the Kafka
receiver's attribute maps (``queue/kafka_attributes.py``). A compiled loop cannot call another one, so
such loops write their small repeated steps (a varint, say) inline.

:func:`compiled` defers everything to the first call: numba is imported then (~0.2 s, so a process
that never plans does not pay it), and the machine code is cached on disk (``__pycache__`` beside
the source, else numba's per-user cache directory): ~1.5 s to compile once per installed version,
~0.2 s to load in a later process. Where no directory is writable numba cannot cache, and the loop
is compiled in memory once per process instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

__all__ = ["Compiled", "compiled"]

P = ParamSpec("P")
R = TypeVar("R")


class Compiled(Generic[P, R]):
    """A plain-Python loop that is compiled by numba on its first call (see the module docstring).

    ``py_func`` stays callable as Python, for debugging and for the tests' reference runs."""

    def __init__(self, fn: Callable[P, R]) -> None:
        self.py_func = fn
        self._jit: Callable[P, R] | None = None
        self._lock = threading.Lock()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        jit = self._jit if self._jit is not None else self._compile()
        return jit(*args, **kwargs)

    def _compile(self) -> Callable[P, R]:
        with self._lock:  # two solves starting together compile (or load) once
            if self._jit is None:
                import numba

                try:
                    self._jit = numba.njit(cache=True, nogil=True)(self.py_func)
                except RuntimeError:  # "cannot cache function ...: no locator available"
                    self._jit = numba.njit(cache=False, nogil=True)(self.py_func)
            assert self._jit is not None
            return self._jit


def compiled(fn: Callable[P, R]) -> Compiled[P, R]:
    """Decorator: compile ``fn`` with numba on first use (``nogil``: concurrent solves run in parallel)."""
    return Compiled(fn)
