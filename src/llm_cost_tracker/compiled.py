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

__all__ = ["Compiled", "compiled", "compiled_or_python"]

P = ParamSpec("P")
R = TypeVar("R")


class Compiled(Generic[P, R]):
    """A plain-Python loop that is compiled by numba on its first call (see the module docstring).

    ``py_func`` stays callable as Python, for debugging and for the tests' reference runs."""

    def __init__(self, fn: Callable[P, R], python_if_not_compiled: bool = False) -> None:
        self.py_func = fn
        self._jit: Callable[P, R] | None = None
        self._lock = threading.Lock()
        self._python_if_not_compiled = python_if_not_compiled
        self.error = ""
        """Why the loop runs as Python ("" while it is compiled, or not yet asked for)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        jit = self._jit if self._jit is not None else self._compile()
        if not self._python_if_not_compiled:
            return jit(*args, **kwargs)
        try:  # (numba compiles for each new kind of argument on its call: a failure to compile shows here)
            return jit(*args, **kwargs)
        except Exception as exc:
            if jit is self.py_func or not type(exc).__module__.startswith(("numba", "llvmlite")):
                raise
            self._fall_back(exc)
            return self.py_func(*args, **kwargs)

    def _fall_back(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"[:300]  # (the caller logs it: no logger down here)
        self._jit = self.py_func

    def _compile(self) -> Callable[P, R]:
        with self._lock:  # two solves starting together compile (or load) once
            if self._jit is None:
                try:
                    self._jit = self._njit()
                except Exception as exc:
                    if not self._python_if_not_compiled:
                        raise
                    self._fall_back(exc)
            assert self._jit is not None
            return self._jit

    def _njit(self) -> Callable[P, R]:
        import numba

        try:
            return numba.njit(cache=True, nogil=True)(self.py_func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, nogil=True)(self.py_func)


def compiled(fn: Callable[P, R]) -> Compiled[P, R]:
    """Decorator: compile ``fn`` with numba on first use (``nogil``: concurrent solves run in parallel)."""
    return Compiled(fn)


def compiled_or_python(fn: Callable[P, R]) -> Compiled[P, R]:
    """:func:`compiled`, but should numba fail to compile ``fn`` (it cannot be imported, no working LLVM), ``fn`` runs
    as the Python it is, with the same results, far slower (:attr:`Compiled.error` says why, for the caller to log). For loops a
    service cannot do without and that have no other way to their answer (call identity's window); a loop with a
    cheaper way round compiles with :func:`compiled` and lets its caller take that way (the wire scan: protobuf)."""
    return Compiled(fn, python_if_not_compiled=True)
