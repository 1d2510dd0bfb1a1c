"""Pricing throughput on the path the service runs, and agreement with LiteLLM, on the same records.

Usage::

    .venv/bin/python benchmarks/pricing.py [--records 1000000] [--sample 20000] [--spans 100000] [--json]

Builds ``--records`` (provider, model, usage) records over the models all three libraries know. The
headline figure is the **service path**: the ``Price`` stage (``transforms/price.py``: ``Price.process``
over requests of 512 spans, the columnar ``PriceCatalog.quote_rows`` plus cache savings and status) on
``--spans`` SpanRecords built from GenAI attributes by the receiver's own ``Detect`` and ``ExtractUsage``
stages, and the same stage one span at a time (``Price.__call__``, the per-span path); detect, usage and
price together are timed too. The library's ``quote_batch_encoded`` / ``quote_batch`` are reported apart. It prices the first ``--sample``
records with ``litellm.cost_per_token`` and ``tokencost`` (per-call Python, so a sample gives their
rate; ``--sample 0``: every record), counts the records where LiteLLM's cost differs from ours and
classifies each (``classify``; docs/pricing.md, "Agreement with LiteLLM"). litellm and tokencost are
benchmark-only extras.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

REQUEST = 512
"""Spans per Export request, as the receivers hand them to the stage."""

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import

from llm_cost_tracker.pricing import PriceCatalog  # noqa: E402
from llm_cost_tracker.transforms.detect import Detect  # noqa: E402
from llm_cost_tracker.transforms.price import Price  # noqa: E402
from llm_cost_tracker.transforms.usage import ExtractUsage  # noqa: E402
from llm_cost_tracker.types import SpanRecord, TokenUsage  # noqa: E402

AT_NS = 1_780_000_000_000_000_000


def lib_name(provider: str, model: str) -> str:
    """The name litellm and tokencost know a model by."""
    return model if provider in ("openai", "anthropic") else f"{provider}/{model}"


def common_models(catalog: PriceCatalog, litellm: Any, tokencost: Any) -> list[tuple[str, str]]:
    """(provider, model) pairs every library prices by the same name, chat models only."""
    pairs = []
    for entry in catalog.list():
        if entry.provider not in ("openai", "anthropic", "gemini", "mistral", "deepseek", "xai"):
            continue
        name = lib_name(entry.provider, entry.model)
        if entry.mode != "chat" or name not in litellm.model_cost or name.lower() not in tokencost.TOKEN_COSTS:
            continue
        if catalog.quote(entry.provider, entry.model, AT_NS, TokenUsage(1, 1)) is None:
            continue
        try:
            litellm.cost_per_token(model=name, prompt_tokens=10, completion_tokens=10)
            tokencost.calculate_cost_by_tokens(10, name, "input")
            tokencost.calculate_cost_by_tokens(10, name, "output")
        except Exception:  # noqa: BLE001 - a model either library cannot price is left out
            continue
        pairs.append((entry.provider, entry.model))
    return pairs


def make_records(pairs: list[tuple[str, str]], n: int, seed: int = 1) -> dict[str, Any]:
    """Realistic token counts: most prompts a few thousand tokens, a share cached, some reasoning."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pairs), n)
    inp = rng.lognormal(7.5, 1.2, n).astype(np.int64).clip(1, 150_000)
    out = rng.lognormal(5.5, 1.0, n).astype(np.int64).clip(1, 16_000)
    cached = np.where(rng.random(n) < 0.4, (inp * rng.random(n) * 0.8).astype(np.int64), 0)
    reasoning = np.where(rng.random(n) < 0.2, (out * rng.random(n)).astype(np.int64), 0)
    return {
        "codes": pick,
        "providers": [pairs[i][0] for i in pick],
        "models": [pairs[i][1] for i in pick],
        "input": inp,
        "output": out,
        "cache_read": cached,
        "cache_write": np.zeros(n, dtype=np.int64),
        "reasoning": reasoning,
    }


def span_records(rec: dict[str, Any], n: int) -> list[SpanRecord]:
    """SpanRecords as the receiver hands them to pricing: GenAI attributes through Detect and ExtractUsage."""
    detect, usage = Detect(), ExtractUsage()
    out = []
    for i in range(n):
        text = {  # the GenAI conventions' attributes, as llm_cost_tracker.testing.genai_attributes writes them
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": rec["providers"][i],
            "gen_ai.request.model": rec["models"][i], "gen_ai.response.model": rec["models"][i],
            "gen_ai.usage.input_tokens": str(rec["input"][i]), "gen_ai.usage.output_tokens": str(rec["output"][i]),
            "gen_ai.usage.cache_read.input_tokens": str(rec["cache_read"][i]),
            "gen_ai.usage.reasoning.output_tokens": str(rec["reasoning"][i]),
        }
        out.append(usage(detect(SpanRecord("ab" * 16, f"{i:016x}", "", AT_NS, 1, "svc", "chat", 0, {}, text))))
    return out


def _map_cost(info: dict[str, Any], inp: int, out: int, cached: int) -> float:
    """What LiteLLM's map entry says the call costs (float, as LiteLLM computes)."""
    rin = info.get("input_cost_per_token") or 0.0
    rcr = info.get("cache_read_input_token_cost")
    return (inp - cached) * rin + cached * (rin if rcr is None else rcr) + out * (info.get("output_cost_per_token") or 0.0)


def classify(catalog: PriceCatalog, litellm: Any, provider: str, model: str, inp: int, out: int, cached: int,
             ours_usd: float, theirs_usd: float) -> str:
    """Why LiteLLM's cost differs from ours for one record: which side departs from the map's entry."""
    close = lambda a, b: abs(a - b) <= 1e-9 + 1e-9 * abs(b)  # noqa: E731
    name = lib_name(provider, model)
    info = litellm.model_cost.get(name, {})
    entry_cost = _map_cost(info, inp, out, cached)
    quote = catalog.quote(provider, model, AT_NS, TokenUsage(inp, out, cached))
    source = quote.price_version if quote is not None else ""
    ours_key = catalog.entries[quote.pricing_model].version_at(AT_NS).source if quote is not None else ""
    if close(ours_usd, entry_cost) and not close(theirs_usd, entry_cost):
        return f"theirs: cost_per_token departs from its own map entry {name!r}"
    if not close(ours_usd, entry_cost) and f"key {name!r}" not in ours_key:
        return f"ours: priced from another map key than {name!r} ({source})"
    if not close(ours_usd, entry_cost):
        return "ours: differs from the map entry it was imported from"
    return "other"


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """The fastest wall time of ``runs`` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="records for litellm/tokencost (0 = all)")
    parser.add_argument("--spans", type=int, default=100_000, help="SpanRecords for the service-path figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    catalog = PriceCatalog.load()
    load_s = time.perf_counter() - start
    import litellm
    import tokencost

    pairs = common_models(catalog, litellm, tokencost)
    rec = make_records(pairs, args.records)
    n = args.records
    sample = n if args.sample <= 0 else min(args.sample, n)

    def ours() -> object:
        return catalog.quote_batch(rec["providers"], rec["models"], AT_NS, rec["input"], rec["output"],
                                   rec["cache_read"], rec["cache_write"], rec["reasoning"])

    def ours_encoded() -> object:
        return catalog.quote_batch_encoded(pairs, rec["codes"], AT_NS, rec["input"], rec["output"],
                                           rec["cache_read"], rec["cache_write"], rec["reasoning"])

    ours()  # compile the batch table and warm the resolution cache
    strings_s = best_of(3, ours)
    ours_s = best_of(5, ours_encoded)
    cost, priced, _ = ours_encoded()
    assert (cost == ours()[0]).all()

    spans = span_records(rec, min(n, args.spans))
    price = Price(lambda: catalog)

    requests = [spans[i:i + REQUEST] for i in range(0, len(spans), REQUEST)]

    def service_price() -> None:
        for request in requests:
            price.process(request)

    def per_span_price() -> None:
        for record in spans:
            price(record)

    service_price()  # warm the resolution cache, as a running service has it
    service_s = best_of(3, service_price)
    per_span_s = best_of(3, per_span_price)
    raw = [SpanRecord("ab" * 16, r.span_id, "", AT_NS, 1, "svc", "chat", 0, {}, dict(r.attributes)) for r in spans]
    raw_requests = [raw[i:i + REQUEST] for i in range(0, len(raw), REQUEST)]
    detect, usage = Detect(), ExtractUsage()

    def service_chain() -> None:
        for request in raw_requests:
            price.process([usage(detect(record)) for record in request])

    chain_s = best_of(2, service_chain)
    assert all(r.pricing_status == "priced" for r in spans[:1000])

    usages = [TokenUsage(int(rec["input"][i]), int(rec["output"][i]), int(rec["cache_read"][i]), 0,
                         int(rec["reasoning"][i])) for i in range(min(n, 200_000))]
    provs, mods = rec["providers"], rec["models"]

    def scalar() -> None:
        quote = catalog.quote
        for i, usage in enumerate(usages):
            quote(provs[i], mods[i], AT_NS, usage)

    scalar_s = best_of(2, scalar)

    def run_litellm() -> list[float]:
        out = []
        for i in range(sample):
            p, c = litellm.cost_per_token(model=lib_name(provs[i], mods[i]),
                                          prompt_tokens=int(rec["input"][i]), completion_tokens=int(rec["output"][i]),
                                          cache_read_input_tokens=int(rec["cache_read"][i]))
            out.append(p + c)
        return out

    def run_tokencost() -> list[float]:
        out = []
        calc = tokencost.calculate_cost_by_tokens
        for i in range(sample):
            name = lib_name(provs[i], mods[i])
            cached = int(rec["cache_read"][i])
            total = calc(int(rec["input"][i]) - cached, name, "input") + calc(int(rec["output"][i]), name, "output")
            if cached:
                try:
                    total += calc(cached, name, "cached")
                except KeyError:
                    total += calc(cached, name, "input")
            out.append(float(total))
        return out

    run_litellm()  # warm caches
    litellm_s = best_of(1, run_litellm)
    tokencost_s = best_of(1, run_tokencost)
    reference = run_litellm()
    agree = 0
    classes: dict[str, int] = {}
    for i in range(sample):
        if abs(reference[i] - int(cost[i]) / 1e12) <= 1e-9 + 1e-9 * reference[i]:
            agree += 1
            continue
        why = classify(catalog, litellm, provs[i], mods[i], int(rec["input"][i]), int(rec["output"][i]),
                       int(rec["cache_read"][i]), int(cost[i]) / 1e12, reference[i])
        label = f"{why} [{provs[i]}/{mods[i]}]"
        classes[label] = classes.get(label, 0) + 1

    ours_rate = n / ours_s
    litellm_rate = sample / litellm_s
    tokencost_rate = sample / tokencost_s
    faster = max(litellm_rate, tokencost_rate)
    result = {
        "service_price_stage_spans_per_s": round(len(spans) / service_s),
        "service_price_stage_us_per_span": round(service_s / len(spans) * 1e6, 3),
        "price_stage_one_span_at_a_time_us_per_span": round(per_span_s / len(spans) * 1e6, 3),
        "service_detect_usage_price_us_per_span": round(chain_s / len(raw) * 1e6, 3),
        "service_spans_timed": len(spans),
        "records": n,
        "distinct_models": len(pairs),
        "priced_fraction": float(priced.mean()),
        "catalog_load_s": round(load_s, 3),
        "batch_api_encoded_records_per_s": round(ours_rate),
        "batch_api_string_names_records_per_s": round(n / strings_s),
        "ours_scalar_quote_us_per_call": round(scalar_s / len(usages) * 1e6, 3),
        "litellm_cost_per_token_records_per_s": round(litellm_rate),
        "tokencost_records_per_s": round(tokencost_rate),
        "sample_for_litellm_tokencost": sample,
        "batch_api_vs_faster_of_the_two": round(ours_rate / faster, 1),
        "batch_api_string_names_vs_faster": round(n / strings_s / faster, 1),
        "agreement_with_litellm_on_sample": f"{agree}/{sample}",
        "disagreements_by_class": classes,
        "batch_targets_met": ours_rate >= 1_000_000 and ours_rate / faster >= 50,
        "service_vs_faster_of_the_two": round(len(spans) / service_s / faster, 1),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
