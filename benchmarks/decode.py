"""The wire decoder's CPU per span, base against this checkout, interleaved in one process.

Times ``scan_request`` and ``decode_scan`` per span over the benchmark workload (``_workload.py``: 512
spans per request, ~15 attributes per span) for two copies of ``sources/otlp_scan.py`` and
``sources/otlp_records.py``: this checkout's, and a base's (``--base``, a ``src`` directory: by default
the main checkout's), loaded under other module names from a temporary copy (so numba caches the base's
machine code there, not beside its source). Base and new take turns request by request, so load moves
both alike.
Figures only: best and median of the rounds, in us of thread CPU per span.

    python benchmarks/decode.py --requests 40 --rounds 7
    python benchmarks/decode.py --base /work/main/src
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _workload import make_payloads  # noqa: E402

from llm_cost_tracker.runtime import tune_gc  # noqa: E402
from llm_cost_tracker.sources import otlp_records, otlp_scan  # noqa: E402
from llm_cost_tracker.sources.otlp_decode import DecodeLimits  # noqa: E402


def _load(name: str, path: Path, replace: dict[str, ModuleType]) -> ModuleType:
    """The module at ``path`` as ``name``, its imports of the modules named in ``replace`` given those."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = {k: sys.modules[k] for k in replace}
    sys.modules.update(replace)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.update(saved)
    return module


def load_base(src: Path) -> tuple[ModuleType, ModuleType]:
    """The base's ``(otlp_scan, otlp_records)``, from a temporary copy of their files."""
    scratch = Path(tempfile.mkdtemp(prefix="lct-decode-base-"))
    for name in ("otlp_scan.py", "otlp_records.py"):
        shutil.copy(src / "llm_cost_tracker" / "sources" / name, scratch / f"base_{name}")
    scan = _load("base_otlp_scan", scratch / "base_otlp_scan.py", {})
    records = _load("base_otlp_records", scratch / "base_otlp_records.py",
                    {"llm_cost_tracker.sources.otlp_scan": scan})
    return scan, records


def timed(sides: dict[str, tuple[ModuleType, ModuleType]], payloads: list[bytes],
          limits: DecodeLimits) -> dict[str, tuple[float, float]]:
    """Seconds of thread CPU in the scans and in the decodes of ``payloads``, by side: the sides take
    turns request by request (first one, then the other), so a burst of load falls on both."""
    spent = {name: [0.0, 0.0] for name in sides}
    order = list(sides)
    for payload in payloads:
        for name in order:
            scan, records = sides[name]
            t0 = time.thread_time()
            s = scan.scan_request(payload, limits)
            t1 = time.thread_time()
            decoded = records.decode_scan(s, payload, limits)
            t2 = time.thread_time()
            assert decoded is not None
            spent[name][0] += t1 - t0
            spent[name][1] += t2 - t1
        order.reverse()
    return {name: (scan, decode) for name, (scan, decode) in spent.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="Export requests of 512 spans per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--base", type=Path, default=Path("/work/main/src"), help="the base's src directory")
    args = parser.parse_args()
    payloads = make_payloads(args.requests, 512, seed=11)
    limits = DecodeLimits()
    spans = 512 * args.requests
    sides: dict[str, tuple[ModuleType, ModuleType]] = {"base": load_base(args.base),
                                                       "new": (otlp_scan, otlp_records)}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    timed(sides, payloads[:1], limits)  # compile or load
    first: list[Any] = [records.decode_scan(scan.scan_request(payloads[0], limits), payloads[0], limits)
                        for scan, records in sides.values()]
    assert first[0] == first[1], "base and new decode differently"
    tune_gc()  # as the service runs: a young collection per 50,000 allocations
    for _ in range(args.rounds):
        for name, spent in timed(sides, payloads, limits).items():
            figures[name].append(spent)
    print(f"{spans:,} spans per round, {args.rounds} rounds; load {os.getloadavg()[0]:.2f}")
    for part, column in (("scan", 0), ("decode", 1)):
        for name in sides:
            per_span = [f[column] / spans * 1e6 for f in figures[name]]
            print(f"  {part:7s}{name:5s} best {min(per_span):6.2f}  median {statistics.median(per_span):6.2f} us/span")
        ratios = [n[column] / b[column] for b, n in zip(figures["base"], figures["new"], strict=True)]
        print(f"  {part:7s}new / base per round: {' '.join(f'{r:.2f}' for r in ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
