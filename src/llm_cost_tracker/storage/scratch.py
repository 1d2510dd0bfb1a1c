"""Temporary files the embedded store reads itself (a batch's rows, span identity's keys), and the sweep of
those a killed process left behind.

Why files: chDB reads a file straight from disk (``INSERT ... FROM INFILE``, ``file()``), so a batch reaches
it without a Python copy of its data (``sinks/clickhouse.py``). Each file is removed in a ``finally`` once its
statement has run, but a process killed in between (SIGKILL, the OOM killer) leaves it in the temporary
directory: up to a batch's size each, tens of MB for 20,000 spans, for every such death. So each file
carries its process id in its name, and a writer on the embedded store removes, when it starts, the files of
processes that no longer run. Never a live process's: several services, or a test suite's workers, share
one temporary directory. A file must also be older than :data:`ORPHAN_AGE_SECONDS`, for the case a process
id cannot tell (processes in another PID namespace sharing the directory), since a file lives only for the
length of one statement.
"""

from __future__ import annotations

import os
import re
import tempfile
import time

import pyarrow as pa

__all__ = ["ORPHAN_AGE_SECONDS", "arrow_file", "scratch_file", "sweep"]

ORPHAN_AGE_SECONDS = 900.0
"""A left-behind file is removed only once it is this old (a statement that reads one lasts seconds)."""
_KINDS = ("batch", "keys")
_NAME = re.compile(rf"^lct-(?:{'|'.join(_KINDS)})-(\d+)-")
"""``lct-<kind>-<pid>-<random><suffix>``: what :func:`scratch_file` names (the schema files of
``sinks/clickhouse.py`` are shared by content and are not scratch)."""


def scratch_file(kind: str, suffix: str) -> str:
    """The path of a new empty file for ``kind`` (``batch`` or ``keys``), named with this process's id; the caller
    writes it and removes it."""
    if kind not in _KINDS:
        raise ValueError(f"unknown scratch file kind {kind!r}")
    with tempfile.NamedTemporaryFile(prefix=f"lct-{kind}-{os.getpid()}-", suffix=suffix, delete=False) as out:
        return out.name


def arrow_file(table: pa.Table, kind: str) -> str:
    """A scratch file holding ``table`` in the Arrow IPC file format (what ``FORMAT Arrow`` and ``file(..., 'Arrow')``
    read), written from the table's buffers without building the file in memory first; the caller removes it."""
    path = scratch_file(kind, ".arrow")
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (another user's process, which signal 0 may not reach, runs too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sweep(directory: str | None = None, min_age_seconds: float = ORPHAN_AGE_SECONDS) -> int:
    """Remove the scratch files in ``directory`` (the temporary directory by default) whose process no longer
    runs and that are older than ``min_age_seconds``; how many were removed. Errors leave a file in place."""
    folder = directory or tempfile.gettempdir()
    oldest = time.time() - min_age_seconds
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        match = _NAME.match(name)
        if match is None or _running(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        try:
            if os.stat(path).st_mtime > oldest:
                continue
            os.unlink(path)
        except OSError:
            continue
        removed += 1
    return removed
