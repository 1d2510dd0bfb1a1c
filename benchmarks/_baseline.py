"""Another commit's code for a benchmark's service processes: ``--baseline REV`` in ``ingest.py`` and
``kafka_pipeline.py``, which run it and this checkout in turns (the machine's speed drifts: ``_speed.py``)."""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["print_ratios", "source_env", "trees"]


def _baseline_tree(rev: str, into: Path) -> Path:
    """The ``src`` directory of commit ``rev`` of this repository, extracted under ``into`` (``git archive``)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", rev, "src"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _checkout_tree(into: Path) -> Path:
    """This checkout's ``src`` as it is now (uncommitted changes included), copied under ``into``: the side a
    baseline is set against runs from a copy too, so that both import from the same kind of place and
    compile their numba loops the same way: an A/A run of ``kafka_pipeline.py`` with the checkout itself on one
    side read its receivers 14-30% cheaper than the extracted copy of the same commit (two rounds; its numba
    cache held every specialisation the requests need, the copy's only the warm-up's), and 0.954 / 1.028 with
    a copy on both sides."""
    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return into / "src"


def source_env(source: Path, env: dict[str, str] | None) -> dict[str, str]:
    """``env`` (or none) with ``source`` first on the service's PYTHONPATH, behind the benchmark's own hooks
    (``_service_child``, when ``env`` has them): ahead of the editable install's path, so its package is the one
    imported."""
    env = dict(env or {})
    path = [p for p in env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")).split(os.pathsep) if p]
    hooks = [p for p in path if p.endswith("_service_child")]
    env["PYTHONPATH"] = os.pathsep.join([*hooks, str(source), *(p for p in path if p not in hooks)])
    return env


def _imported_from(env: dict[str, str]) -> str:
    """Where a service child with ``env`` imports ``llm_cost_tracker`` from."""
    return subprocess.run([sys.executable, "-c", "import llm_cost_tracker; print(llm_cost_tracker.__file__)"],
                          env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout.strip()


_WARM_UP = """
import importlib
for name in ("llm_cost_tracker.sources.otlp_records", "llm_cost_tracker.queue.kafka_attributes"):
    try:
        importlib.import_module(name).warm_up()
    except (ImportError, AttributeError):
        pass  # an older commit without that compiled loop
"""


def _warm_compiled(env: dict[str, str]) -> None:
    """Compile the tree's numba loops once, into its own cache (``__pycache__`` beside the sources), before it is
    timed: this checkout's cache is already there, and a Kafka receiver compiles on its first requests."""
    subprocess.run([sys.executable, "-c", _WARM_UP], env={**os.environ, **env}, check=True, capture_output=True)


@contextmanager
def trees(rev: str) -> Iterator[tuple[Path, Path]]:
    """(commit ``rev``'s ``src``, a copy of this checkout's), each with its numba cache filled and checked to be
    what a child process given its :func:`source_env` imports; removed on exit. Raises RuntimeError when a
    child would import the package from elsewhere."""
    with tempfile.TemporaryDirectory(prefix="lct-baseline-") as tree, \
            tempfile.TemporaryDirectory(prefix="lct-checkout-") as mine:
        sides = ((_baseline_tree(rev, Path(tree)), tree), (_checkout_tree(Path(mine)), mine))
        for src, root in sides:
            env = source_env(src, None)
            _warm_compiled(env)
            where = _imported_from(env)
            if not where.startswith(root):
                raise RuntimeError(f"a child process would import {where}, not the copy in {src}")
        yield sides[0][0], sides[1][0]


def print_ratios(pairs: Sequence[dict[str, dict[str, Any]]], rows: Sequence[tuple[str, str, str, float]]) -> None:
    """Per figure (name, key in a run's figures, unit, scale): this checkout's median against the baseline's,
    their ratio, and each round's."""
    for name, key, unit, scale in rows:
        this = [p["this"][key] * scale for p in pairs]
        base = [p["baseline"][key] * scale for p in pairs]
        ratios = ", ".join(f"{t / b:.3f}" for t, b in zip(this, base, strict=True))
        print(f"{name:26s} {statistics.median(this):,.1f} against {statistics.median(base):,.1f} {unit} (medians): "
              f"{statistics.median(this) / statistics.median(base):.3f}x; per round {ratios}")
