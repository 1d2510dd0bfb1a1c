"""Another commit's code for a benchmark's service processes: ``--baseline REV`` in ``ingest.py`` and
``kafka_pipeline.py``, which run it and this checkout in turns (the machine's speed drifts: ``_speed.py``)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

__all__ = ["baseline_tree", "checkout_tree", "imported_from", "source_env", "warm_compiled"]


def baseline_tree(rev: str, into: Path) -> Path:
    """The ``src`` directory of commit ``rev`` of this repository, extracted under ``into`` (``git archive``)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", rev, "src"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def checkout_tree(into: Path) -> Path:
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
    path = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    hooks, rest = (path.split(os.pathsep, 1) + [""])[:2] if "_service_child" in path else ("", path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (hooks, str(source), rest) if p)
    return env


def imported_from(env: dict[str, str]) -> str:
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


def warm_compiled(env: dict[str, str]) -> None:
    """Compile the tree's numba loops once, into its own cache (``__pycache__`` beside the sources), before it is
    timed: this checkout's cache is already there, and a Kafka receiver compiles on its first requests."""
    subprocess.run([sys.executable, "-c", _WARM_UP], env={**os.environ, **env}, check=True, capture_output=True)
