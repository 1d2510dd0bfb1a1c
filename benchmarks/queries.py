"""Load synthetic spans into chDB and time every cookbook query, raw table versus rollup.

    .venv/bin/python benchmarks/queries.py                       # 10,000,000 spans over 90 days
    .venv/bin/python benchmarks/queries.py --spans 2000000 --json out.json

Spans are generated as Arrow columns with numpy (a realistic mix: 40 tenants with Zipf-like traffic,
1-4 services and 2-5 of 12 models each, list prices, an unpriced in-house model, lognormal tokens and latencies, cache
reads on a third of the calls, a conversation id on 40% of them) and written with
``client.insert_arrow`` and the sink's dedup settings: the production insert path minus building
SpanRecord objects. Batches arrive in time order, as they would from the receiver.

Reports: load rate, median latency of each query in docs/queries.md and of its ``.raw`` twin,
and on-disk bytes per span (raw table, and the rollups). Figures only: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llm_cost_tracker.config import Settings  # noqa: E402
from llm_cost_tracker.storage.client import DEDUP_SETTINGS, connect  # noqa: E402
from llm_cost_tracker.storage.migrate import migrate  # noqa: E402
from llm_cost_tracker.storage.rows import COST_TYPE  # noqa: E402

# (provider, model, traffic share, USD per million input tokens, per million output, cache-read factor)
MODELS = [
    ("openai", "gpt-4o-mini", 28, 0.15, 0.60, 0.5), ("openai", "gpt-4o", 12, 2.50, 10.0, 0.5),
    ("openai", "gpt-4.1-mini", 8, 0.40, 1.60, 0.25), ("openai", "o3-mini", 4, 1.10, 4.40, 0.5),
    ("anthropic", "claude-sonnet-4-5", 14, 3.0, 15.0, 0.1), ("anthropic", "claude-haiku-4-5", 8, 1.0, 5.0, 0.1),
    ("gcp.gemini", "gemini-2.5-flash", 10, 0.30, 2.50, 0.25), ("gcp.gemini", "gemini-2.5-pro", 4, 1.25, 10.0, 0.25),
    ("aws.bedrock", "anthropic.claude-3-haiku", 5, 0.25, 1.25, 0.1), ("openai", "text-embedding-3-small", 4, 0.02, 0, 1),
    ("mistral", "mistral-large", 2, 2.0, 6.0, 1), ("acme-llm", "in-house-7b", 1, 0, 0, 1),  # the last: unpriced
]
SERVICE_POOL = ["checkout-assistant", "support-bot", "search-rerank", "doc-summarizer", "code-review",
                "eval-runner", "email-drafts", "sales-notes", "translation", "sql-copilot", "ticket-triage",
                "kb-answers"]
TENANTS = 40
PICO = 10**12


def _strings(values: np.ndarray) -> pa.Array:
    return pa.array(values.tolist(), type=pa.string())


def _map(keys: list[str], columns: list[np.ndarray], n: int) -> pa.Array:
    """A Map(String, String) column: row i holds keys[k] -> columns[k][i] wherever that is not None."""
    values = np.stack([np.asarray(c, dtype=object) for c in columns], axis=1)  # (n, K), row-major
    present = values != None  # noqa: E711 (element-wise)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    flat_keys = np.broadcast_to(np.array(keys, dtype=object), (n, len(keys)))[present]
    return pa.MapArray.from_arrays(pa.array(offsets), pa.array(flat_keys.tolist(), pa.string()),
                                   pa.array(values[present].tolist(), pa.string()))


class Workload:
    """Deterministic synthetic spans (``seed``) spread over ``days`` days ending now."""

    def __init__(self, spans: int, days: int, seed: int = 7) -> None:
        self.spans, self.days = spans, days
        self.rng = np.random.default_rng(seed)
        self.end_ns = time.time_ns()
        self.start_ns = self.end_ns - days * 86400 * 10**9
        weights = 1 / np.arange(1, TENANTS + 1) ** 1.1
        self.tenant_p = weights / weights.sum()
        self.tenant_services = [self.rng.choice(len(SERVICE_POOL), size=self.rng.integers(1, 5), replace=False)
                                for _ in range(TENANTS)]
        share = np.array([m[2] for m in MODELS], float)
        self.tenant_models = []  # each tenant uses 2-5 models, weighted by their market share
        for _ in range(TENANTS):
            chosen = self.rng.choice(len(MODELS), size=self.rng.integers(2, 6), replace=False, p=share / share.sum())
            self.tenant_models.append((chosen, share[chosen] / share[chosen].sum()))
        self.rate_in = np.array([round(m[3] * 10**6) for m in MODELS], np.int64)  # pico-USD per token
        self.rate_out = np.array([round(m[4] * 10**6) for m in MODELS], np.int64)
        self.rate_cache = np.array([round(m[3] * m[5] * 10**6) for m in MODELS], np.int64)
        self.unpriced = np.array([m[1] == "in-house-7b" for m in MODELS])

    def batch(self, index: int, size: int) -> pa.Table:
        rng, n = self.rng, size
        span_ns = (self.end_ns - self.start_ns) / self.spans
        ts = self.start_ns + ((index + np.sort(rng.random(n)) * n) * span_ns).astype(np.int64)
        tenant = rng.choice(TENANTS, size=n, p=self.tenant_p)
        service = np.array([self.tenant_services[t][rng.integers(len(self.tenant_services[t]))] for t in tenant])
        model = np.empty(n, dtype=np.int64)
        for t in np.unique(tenant):
            rows = np.flatnonzero(tenant == t)
            chosen, p = self.tenant_models[t]
            model[rows] = rng.choice(chosen, size=len(rows), p=p)
        embedding = np.array([MODELS[m][1].startswith("text-embedding") for m in model])
        inp = (rng.lognormal(7, 1.2, n) + 1).astype(np.int64)
        out = np.where(embedding, 0, rng.lognormal(5, 1.0, n) + 1).astype(np.int64)
        cached = np.where(rng.random(n) < 0.33, (inp * rng.uniform(0.2, 0.9, n)).astype(np.int64), 0)
        reasoning = np.where(np.array([MODELS[m][1] == "o3-mini" for m in model]), out // 2, 0)
        cost = (inp - cached) * self.rate_in[model] + cached * self.rate_cache[model] + out * self.rate_out[model]
        savings = cached * (self.rate_in[model] - self.rate_cache[model])
        unpriced = self.unpriced[model]
        duration = (rng.lognormal(7.0, 0.8, n) * 1e6).astype(np.int64) + (out * 15_000_000)
        trace_numbers = (index + np.arange(n)) // 3  # about three LLM calls per trace
        trace_id = np.char.add(np.char.zfill(np.char.mod("%x", trace_numbers), 24), "5eed5eed")
        span_id = np.char.zfill(np.char.mod("%x", index + np.arange(n)), 16)
        conversation = np.where(rng.random(n) < 0.4, np.char.add("conv-", (trace_numbers // 4).astype(str)), None)
        providers = np.array([m[0] for m in MODELS])[model]
        models = np.array([m[1] for m in MODELS])[model]
        tenants = np.char.add("tenant-", np.char.zfill(tenant.astype(str), 2))
        services = np.array(SERVICE_POOL)[service]
        valid = pa.array(~unpriced)

        def decimal(values: np.ndarray) -> pa.Array:
            words = np.zeros((n, 2), dtype=np.int64)
            words[:, 0] = values
            return pa.Array.from_buffers(COST_TYPE, n, [valid.buffers()[1] if unpriced.any() else None,
                                                         pa.py_buffer(words.tobytes())],
                                         null_count=int(unpriced.sum()))

        operation = np.where(embedding, "embeddings", "chat")
        columns = {
            "timestamp": pa.array(ts, pa.int64()).cast(pa.timestamp("ns", "UTC")),
            "tenant": _strings(tenants), "trace_id": _strings(trace_id), "span_id": _strings(span_id),
            "parent_span_id": pa.array([""] * n, pa.string()), "service_name": _strings(services),
            "span_name": _strings(np.char.add(operation, np.char.add(" ", models))), "operation": _strings(operation),
            "provider": _strings(providers), "request_model": _strings(models), "response_model": _strings(models),
            "pricing_model": _strings(np.where(unpriced, "", np.char.add(providers, np.char.add("/", models)))),
            "price_version": _strings(np.where(unpriced, "", "2026-01-01")),
            "dialect": pa.array(["genai"] * n, pa.string()),
            "pricing_status": _strings(np.where(unpriced, "unpriced", "priced")),
            "input_tokens": pa.array(inp, pa.uint64()), "output_tokens": pa.array(out, pa.uint64()),
            "cache_read_tokens": pa.array(cached, pa.uint64()), "cache_write_tokens": pa.array(np.zeros(n, np.int64), pa.uint64()),
            "reasoning_tokens": pa.array(reasoning, pa.uint64()),
            "cost_usd": decimal(cost), "reported_cost_usd": pa.nulls(n, COST_TYPE), "cache_savings_usd": decimal(savings),
            "duration_ns": pa.array(duration, pa.uint64()),
            "status_code": pa.array(np.where(rng.random(n) < 0.01, 2, 0).astype(np.uint8), pa.uint8()),
        }
        env = np.full(n, "production", dtype=object)
        columns["resource_attributes"] = _map(["service.name", "tenant.id", "deployment.environment"],
                                              [services.astype(object), tenants.astype(object), env], n)
        columns["attributes"] = _map(
            ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.conversation.id"],
            [operation.astype(object), providers.astype(object), models.astype(object), conversation], n)
        return pa.table(columns)


def cookbook() -> dict[str, str]:
    text = (ROOT / "docs" / "queries.md").read_text()
    out = {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        name = re.match(r"^-- name: ([\w.]+)\n", block)
        if name:
            out[name.group(1)] = block
    return out


def timed(client: Any, sql: str, parameters: dict[str, str] | None, repeat: int) -> float:
    """Median wall time in milliseconds over ``repeat`` runs (after one warm-up run)."""
    client.query(sql, parameters=parameters)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.query(sql, parameters=parameters)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per query (median reported)")
    parser.add_argument("--data-dir", help="chDB directory (default: a new temporary one)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--skip-load", action="store_true", help="time the queries on what --data-dir holds")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="lct-bench-")
    settings = Settings(data_dir=data_dir, ttl_raw_days=0, ttl_hourly_days=0)
    client = connect(settings)
    migrate(client, settings=settings)
    work = Workload(args.spans, args.days)
    gen_s = insert_s = 0.0
    done = 0
    if args.skip_load:
        done = args.spans = client.query("SELECT count() FROM llm_spans").result_rows[0][0]
        insert_s = float("nan")
    else:
        print(f"loading {args.spans:,} spans over {args.days} days into {data_dir}", flush=True)
    while done < args.spans:
        size = min(args.batch, args.spans - done)
        t0 = time.perf_counter()
        table = work.batch(done, size)
        t1 = time.perf_counter()
        client.insert_arrow("llm_spans", table, settings=DEDUP_SETTINGS | {"insert_deduplication_token": f"b{done}"})
        t2 = time.perf_counter()
        gen_s, insert_s, done = gen_s + t1 - t0, insert_s + t2 - t1, done + size
        if done % (args.batch * 10) == 0 or done == args.spans:
            print(f"  {done:>11,} spans, insert {done / insert_s:,.0f} spans/s", flush=True)
    figures: dict[str, Any] = {"spans": args.spans, "days": args.days, "batch": args.batch,
                               "insert_spans_per_s": None if args.skip_load else round(done / insert_s), "generate_s": round(gen_s, 1),
                               "insert_s": round(insert_s, 1)}
    sizes = client.query(
        "SELECT table, sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes), count() FROM system.parts "
        "WHERE active AND database = currentDatabase() GROUP BY table"
    ).result_rows
    figures["tables"] = {t: {"rows": r, "bytes_on_disk": b, "uncompressed": u, "parts": p} for t, r, b, u, p in sizes}
    raw = figures["tables"]["llm_spans"]
    figures["bytes_per_span"] = round(raw["bytes_on_disk"] / raw["rows"], 1)
    rollup_bytes = sum(figures["tables"].get(t, {}).get("bytes_on_disk", 0) for t in ("llm_spend_hourly", "llm_spend_daily"))
    figures["rollup_bytes_per_span"] = round(rollup_bytes / raw["rows"], 2)
    trace = client.query("SELECT trace_id FROM llm_spans WHERE timestamp > now() - INTERVAL 3 DAY LIMIT 1").result_rows
    params = {"cost_of_trace": {"trace_id": trace[0][0] if trace else ""}}
    queries = cookbook()
    figures["queries_ms"] = {}
    print(f"\nbytes per span on disk: {figures['bytes_per_span']} (rollups add {figures['rollup_bytes_per_span']})")
    print(f"{'query':36} {'rollup/main ms':>14} {'raw ms':>9} {'speed-up':>8}")
    for name in (n for n in queries if not n.endswith(".raw")):
        main_ms = timed(client, queries[name], params.get(name), args.repeat)
        raw_ms = timed(client, queries[name + ".raw"], params.get(name), args.repeat) if name + ".raw" in queries else None
        figures["queries_ms"][name] = {"main": round(main_ms, 1), "raw": None if raw_ms is None else round(raw_ms, 1)}
        ratio = f"{raw_ms / main_ms:7.1f}x" if raw_ms else "       -"
        print(f"{name:36} {main_ms:14.1f} {raw_ms if raw_ms is not None else float('nan'):9.1f} {ratio}", flush=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
