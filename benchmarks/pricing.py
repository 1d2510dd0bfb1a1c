"""Pricing throughput: our batch path vs litellm.cost_per_token and tokencost on the same records.

Usage::

    .venv/bin/python benchmarks/pricing.py [--records 1000000] [--sample 20000] [--json]

Builds ``--records`` (provider, model, usage) records over the models all three libraries know and
prices them all through ``PriceCatalog.quote_batch_encoded`` (names dictionary-encoded, as a batch
of spans carries them; best of five runs) and through ``quote_batch`` with one Python string pair
per record (best of three). It prices the first
``--sample`` of the same records with ``litellm.cost_per_token`` and ``tokencost`` (both are per-call
Python, so a sample gives their rate; ``--sample 0`` runs them on every record). Also reports the
per-call time of the cached scalar ``quote``. Targets (issue 3): >= 1,000,000 records/s on one core
and >= 50x the faster of the two. litellm and tokencost are benchmark-only extras.
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

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import

from llm_cost_tracker.pricing import PriceCatalog  # noqa: E402
from llm_cost_tracker.types import TokenUsage  # noqa: E402

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
    agree = sum(abs(reference[i] - int(cost[i]) / 1e12) <= 1e-9 + 1e-9 * reference[i] for i in range(sample))

    ours_rate = n / ours_s
    litellm_rate = sample / litellm_s
    tokencost_rate = sample / tokencost_s
    faster = max(litellm_rate, tokencost_rate)
    result = {
        "records": n,
        "distinct_models": len(pairs),
        "priced_fraction": float(priced.mean()),
        "catalog_load_s": round(load_s, 3),
        "ours_batch_encoded_records_per_s": round(ours_rate),
        "ours_batch_string_names_records_per_s": round(n / strings_s),
        "ours_scalar_quote_us_per_call": round(scalar_s / len(usages) * 1e6, 3),
        "litellm_cost_per_token_records_per_s": round(litellm_rate),
        "tokencost_records_per_s": round(tokencost_rate),
        "sample_for_litellm_tokencost": sample,
        "ratio_vs_faster_of_the_two": round(ours_rate / faster, 1),
        "ratio_string_names_vs_faster": round(n / strings_s / faster, 1),
        "agreement_with_litellm_on_sample": f"{agree}/{sample}",
        "targets_met": ours_rate >= 1_000_000 and ours_rate / faster >= 50,
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
