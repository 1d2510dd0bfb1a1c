"""Recall and precision per detector on the labelled corpus, and redaction throughput on one core.

The corpus (``tests/redaction/testdata/corpus.jsonl``) holds realistic prompts with every planted
entity labelled. A planted entity is *found* when a detection of its type covers it; a detection is
*correct* when it covers a planted entity of its type. ``leaked`` counts planted values still present
in the masked text (whatever detector removed them). Throughput is MB of UTF-8 text per second
through ``Scanner.mask`` (every detector, mask mode) and through the default ``Redact`` stage,
measured in this process on one core. The last figure is the cost per span of the default
``Redact`` stage on the ingest workload (``benchmarks/_workload.py``: realistic GenAI spans of about
15 attributes, decoded by ``otlp_decode`` and run through the earlier ``default_transforms``).
Figures only: nothing here asserts a time.

``--baseline FILE`` also times another scanner module, interleaved with the current one in this
process (the fairest comparison on a shared machine), and counts the values the two mask
differently. The module must be self-contained, such as the scanner of commit 6887026:
``git show 6887026:src/llm_cost_tracker/transforms/_detectors.py > /tmp/old_detectors.py``.

    python benchmarks/redaction.py [--seconds 3] [--baseline /tmp/old_detectors.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from llm_cost_tracker.transforms._detectors import DETECTOR_NAMES, SECRET_DETECTORS, Scanner
from llm_cost_tracker.transforms.redact import Redact, RedactionConfig
from llm_cost_tracker.types import SpanRecord

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "redaction" / "testdata" / "corpus.jsonl"


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score(corpus: list[dict[str, Any]], scanner: Scanner) -> dict[str, dict[str, int]]:
    """Per detector: planted, found, detections, correct; plus leaked planted values."""
    stats: dict[str, Counter[str]] = {name: Counter() for name in DETECTOR_NAMES}
    for sample in corpus:
        text = sample["text"].encode()
        found = scanner.find(text)
        planted: list[tuple[int, int, str]] = []
        cursor: dict[str, int] = {}
        for e in sample["entities"]:
            value = e["value"].encode()
            start = text.find(value, cursor.get(e["value"], 0))
            assert start >= 0, (sample["id"], e)
            cursor[e["value"]] = start + 1
            planted.append((start, start + len(value), e["type"]))
        for ps, pe, kind in planted:
            stats[kind]["planted"] += 1
            if any(s <= ps and pe <= e and d.name == kind for s, e, d in found):
                stats[kind]["found"] += 1
        for s, e, d in found:
            stats[d.name]["detections"] += 1
            if any(s < pe and ps < e and kind == d.name for ps, pe, kind in planted):
                stats[d.name]["correct"] += 1
        masked = scanner.mask(sample["text"])
        for e in sample["entities"]:
            if e["value"] in masked:
                stats[e["type"]]["leaked"] += 1
    return {k: dict(v) for k, v in stats.items()}


def conversations(texts: list[str], turns: int) -> list[str]:
    """``gen_ai.input.messages`` values: the texts as JSON chat histories of ``turns`` messages."""
    return [json.dumps([{"role": ("user", "assistant")[i % 2], "parts": [{"type": "text", "content": t}]}
                        for i, t in enumerate(texts[j:j + turns])]) for j in range(0, len(texts), turns)]


def throughput(texts: list[str], fn: Any, seconds: float) -> float:
    """MB/s of UTF-8 text through ``fn``, in CPU time of this (single-threaded) process, best of three."""
    size = sum(len(t.encode()) for t in texts)
    best = 0.0
    for _ in range(3):
        n, started = 0, time.process_time()
        while True:
            for t in texts:
                fn(t)
            n += 1
            elapsed = time.process_time() - started
            if elapsed >= seconds / 3:
                break
        best = max(best, n * size / elapsed / 1e6)
    return best


def compare(path: str, sets: list[tuple[str, list[str]]], seconds: float) -> None:
    """Best-of times of the scanner in ``path`` and the current one, taking turns, and how many values
    they mask differently (0 unless a change was meant)."""
    spec = importlib.util.spec_from_file_location("baseline_detectors", path)
    assert spec is not None and spec.loader is not None
    base = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = base  # (dataclasses look their module up)
    spec.loader.exec_module(base)
    print(f"baseline {path} (B) against the current scanner (C), interleaved, best of the turns:")
    for label, values in sets:
        size = sum(len(t.encode()) for t in values)
        for kind, names in (("mask, every detector", DETECTOR_NAMES), ("secret scan only", SECRET_DETECTORS)):
            old, new = base.Scanner(names).mask, Scanner(names).mask
            differ = sum(old(t) != new(t) for t in values)
            best = {"B": float("inf"), "C": float("inf")}
            turns = max(2, int(seconds / 0.25))
            for turn in range(turns):
                for name, fn in (("B", old), ("C", new)) if turn % 2 == 0 else (("C", new), ("B", old)):
                    started = time.process_time()
                    for t in values:
                        fn(t)
                    best[name] = min(best[name], time.process_time() - started)
            figures = [f"{name} {best[name] / len(values) * 1e6:8.2f} µs {size / best[name] / 1e6:6.1f} MB/s"
                       for name in "BC"]
            print(f"  {label:<28}{kind:<22}" + "  ".join(figures) + f"  ({differ} values masked differently)")


def records_throughput(texts: list[str], redact: Redact, seconds: float) -> float:
    """MB/s of content through ``redact`` as span records (content in gen_ai.input.messages)."""
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o", "gen_ai.usage.input_tokens": "1200",
            "gen_ai.usage.output_tokens": "300", "server.address": "api.openai.com"}

    def one(text: str) -> None:
        redact(SpanRecord("t", "s", "", 0, 0, "svc", "chat", 0, {"service.name": "svc"},
                          {**base, "gen_ai.input.messages": text, "gen_ai.output.messages": text}))

    return throughput(texts, one, seconds) * 2  # two content attributes per record


def span_cost(spans: int = 4096, repeats: int = 7) -> tuple[float, float]:
    """CPU µs per span of the default ``Redact`` stage on the ingest workload (best of ``repeats``)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _workload import make_payloads

    from llm_cost_tracker.frontend import default_transforms
    from llm_cost_tracker.metrics import Metrics
    from llm_cost_tracker.pricing import PriceCatalog
    from llm_cost_tracker.sources.otlp_decode import DecodeLimits, decode_spans, parse_request

    catalog = PriceCatalog.load()
    *before, redact = default_transforms(lambda: catalog, Metrics())
    payloads = make_payloads(max(1, spans // 512), 512)
    best = float("inf")
    for _ in range(repeats):
        records = []
        for payload in payloads:
            for record in decode_spans(parse_request(payload), DecodeLimits()).records:
                for stage in before:
                    record = stage(record)
                records.append(record)
        attrs = sum(len(r.attributes) for r in records) / len(records)
        started = time.process_time()
        for record in records:
            redact(record)
        best = min(best, (time.process_time() - started) / len(records))
    return best * 1e6, attrs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per throughput figure")
    ap.add_argument("--baseline", help="another scanner module to time against the current one")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    corpus = load_corpus()
    texts = [s["text"] for s in corpus]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    everything = Scanner(DETECTOR_NAMES)
    print(f"corpus: {len(corpus)} samples, {mb:.2f} MB, "
          f"{sum(len(s['entities']) for s in corpus)} planted entities\n")
    print(f"{'detector':<16}{'planted':>8}{'found':>7}{'recall':>8}{'detected':>9}{'correct':>8}"
          f"{'precision':>10}{'leaked':>7}")
    for name, st in score(corpus, everything).items():
        planted, found = st.get("planted", 0), st.get("found", 0)
        det, correct = st.get("detections", 0), st.get("correct", 0)
        recall = f"{found / planted:.4f}" if planted else "-"
        precision = f"{correct / det:.4f}" if det else "-"
        print(f"{name:<16}{planted:>8}{found:>7}{recall:>8}{det:>9}{correct:>8}{precision:>10}"
              f"{st.get('leaked', 0):>7}")
    print()
    clean = [s["text"] for s in corpus if not s["entities"]]
    secrets = Scanner(SECRET_DETECTORS)
    masking = Redact(RedactionConfig(content_mode="mask"))
    figures: list[tuple[str, list[str], Any]] = []
    for label, values in (("corpus samples, one per value", texts),
                          ("corpus as 16-turn chat histories", conversations(texts, 16)),
                          ("corpus as 64-turn chat histories", conversations(texts, 64)),
                          ("entity-free samples as 16-turn histories", conversations(clean, 16))):
        avg = sum(len(t.encode()) for t in values) / len(values)
        print(f"{label} (avg {avg:,.0f} B per value), MB/s of text on one core:")
        figures = [("mask, every detector", values, everything.mask),
                   ("secret scan only", values, secrets.mask)]
        for name, vals, fn in figures:
            rate = throughput(vals, fn, args.seconds)
            print(f"  {name:<44}{rate:>8.1f}   ({avg / rate:.2f} µs per value)")
        print(f"  {'Redact stage, default policy (drop content)':<44}"
              f"{records_throughput(values, Redact(), args.seconds):>8.1f}")
        print(f"  {'Redact stage, content_mode = mask':<44}{records_throughput(values, masking, args.seconds):>8.1f}")
    if args.baseline:
        print()
        compare(args.baseline, [("corpus samples (279 B)", texts), ("16-turn histories", conversations(texts, 16)),
                                ("64-turn histories", conversations(texts, 64))], args.seconds)
    us, attrs = span_cost()
    print(f"\ndefault Redact stage on the ingest workload ({attrs:.1f} attributes per span): {us:.2f} µs per span")


if __name__ == "__main__":
    main()
