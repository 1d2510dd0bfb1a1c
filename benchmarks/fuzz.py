"""Long-running fuzzer: OTLP decoding, dialect normalisation and pricing, with hang and memory watch.

The bounded property tests live in ``tests/fuzz`` (hypothesis); this script runs the same checks on
a fast seeded random generator for as many inputs as you give it (default 1,000,000), rotating over
four targets:

- ``wire``: realistic Export payloads (benchmarks/_workload.py) with flipped, cut, duplicated and
  spliced bytes -> parse -> decode -> transforms -> Arrow rows; the receiver's wire scan must give
  the same answer as protobuf whenever it does not leave the request to it.
- ``structured``: random requests (random AnyValues nested up to 40 deep, huge and odd strings,
  random ids, times and status codes) -> wire -> the same chain.
- ``usage``: random attribute dicts -> Detect -> ExtractUsage -> Price -> Arrow rows.
- ``pricing``: random provider/model/usage -> ``PriceCatalog.quote``: never raises, cost >= 0,
  more input/output tokens never cost less.

A failure is any exception other than the allowed ones (DecodeError, LimitExceeded, Drop) or a
broken property; a hang is an input over ``--time-limit`` seconds (SIGALRM). Prints progress with
peak RSS every ``--report-every`` seconds and a summary at the end; failing inputs are saved.

Memory: each progress line also gives the number of entries in every cache keyed by client input
(the catalog's resolution cache, family memo, unresolved set and fallback memo, the ``Price``
transform's unpriced set, the decoder's rendered-value cache), the bytes glibc malloc holds in use
and the bytes Arrow's pool holds, so RSS growth can be checked against the caches filling.
``--small-caches`` lowers every cache's cap (to 1/64, at least 64) so they all fill within the
first few thousand inputs and the plateau shows in a short run.

    python benchmarks/fuzz.py --inputs 1000000 --out /tmp/fuzz
    python benchmarks/fuzz.py --inputs 300000 --small-caches --report-every 10
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import dataclasses
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _workload import make_payloads  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402

from llm_cost_tracker.pricing import PriceCatalog  # noqa: E402
from llm_cost_tracker.pricing import _catalog as catalog_module  # noqa: E402
from llm_cost_tracker.sources import otlp_decode  # noqa: E402
from llm_cost_tracker.sources.otlp_decode import (  # noqa: E402
    DecodedBatch,
    DecodeError,
    DecodeLimits,
    LimitExceeded,
    decode_spans,
    parse_request,  # noqa: E402
)
from llm_cost_tracker.sources.otlp_records import decode_scan, warm_up  # noqa: E402
from llm_cost_tracker.sources.otlp_scan import scan_request  # noqa: E402
from llm_cost_tracker.storage.rows import records_to_arrow  # noqa: E402
from llm_cost_tracker.transforms import price as price_module  # noqa: E402
from llm_cost_tracker.transforms.detect import Detect  # noqa: E402
from llm_cost_tracker.transforms.price import Price  # noqa: E402
from llm_cost_tracker.transforms.usage import MAX_TOKENS, ExtractUsage  # noqa: E402
from llm_cost_tracker.types import Drop, SpanRecord, TokenUsage  # noqa: E402

KEYS = ["gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name", "gen_ai.system",
        "gen_ai.operation.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens", "llm.model_name",
        "llm.provider", "llm.token_count.prompt", "llm.token_count.completion", "openinference.span.kind",
        "gen_ai.usage.cost", "llm.cost.total", "openai.response.service_tier", "tenant.id", "service.name",
        "traceloop.span.kind", "gen_ai.usage.input_audio_tokens", "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens"]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5-20250929", "gemini-2.5-pro", "o3-mini", "text-embedding-3-small",
          "anthropic.claude-3-haiku-20240307-v1:0", "models/gemini-2.5-flash", "azure/gpt-4o", "gpt-4o-2099-01-01"]
PROVIDERS = ["openai", "anthropic", "gcp.gemini", "aws.bedrock", "azure.ai.openai", "OpenAI", "vertex_ai", "groq", ""]
ODD = ["", "\x00", "\u202e", "𝕏" * 50, "١٢٣", "9" * 5000, "-0", "NaN", "1e400", "1E+999999999", "inf", "1e30",
       " 12 ", "0x10", "1_000", "-5", "2.5", "99999999999999999999", "[1]", "é" * 3000, "true"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo() -> tuple[float, float] | None:
    """(MiB in use, MiB free but kept) of glibc malloc's heap (mmapped blocks counted as in use), if glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return None
    return round((info.uordblks + info.hblkhd) / 2**20, 1), round(info.fordblks / 2**20, 1)


def shrink_caches(factor: int = 64) -> dict[str, int]:
    """Lower the caps of the caches keyed by client input (for a short run that shows them full)."""
    catalog_module._CACHE_LIMIT = max(64, catalog_module._CACHE_LIMIT // factor)
    price_module.SEEN_UNPRICED_LIMIT = max(64, price_module.SEEN_UNPRICED_LIMIT // factor)
    otlp_decode._RENDERED_LIMIT = max(64, otlp_decode._RENDERED_LIMIT // factor)
    return cache_caps()


def cache_caps() -> dict[str, int]:
    limit = catalog_module._CACHE_LIMIT
    return {"resolve": limit, "uniform": limit, "unresolved": limit, "fallbacks": limit,
            "seen_unpriced": price_module.SEEN_UNPRICED_LIMIT, "rendered": otlp_decode._RENDERED_LIMIT}


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang


class Gen:
    """Fast seeded random inputs."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.payloads = make_payloads(16, spans_per_request=4, seed=seed)

    def text(self) -> str:
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return r.choice(ODD)
        if roll < 0.5:
            return r.choice(MODELS + PROVIDERS) + r.choice(["", "-", "/", "@", "-2025-01-01", r.choice(ODD)])
        if roll < 0.6:
            return str(r.randint(-(10**20), 10**20))
        n = r.choice([1, 5, 20, 100, 70_000]) if r.random() < 0.05 else r.randint(0, 30)
        return "".join(chr(r.choice([r.randint(32, 126), r.randint(0, 0xD7FF), r.randint(0xE000, 0x10FFFF)]))
                       for _ in range(min(n, 2000))) * (1 if n <= 2000 else n // 2000)

    def any_value(self, depth: int = 0) -> AnyValue:
        r = self.rng
        v = AnyValue()
        kind = r.randrange(9) if depth < 40 else r.randrange(6)
        if kind == 0:
            v.string_value = self.text()
        elif kind == 1:
            v.int_value = r.randint(-(2**63), 2**63 - 1)
        elif kind == 2:
            v.double_value = r.choice([float("nan"), float("inf"), -0.0, 1e308, r.random()])
        elif kind == 3:
            v.bool_value = r.random() < 0.5
        elif kind == 4:
            v.bytes_value = r.randbytes(r.randint(0, 64))
        elif kind == 5:
            pass
        elif kind in (6, 7):
            chain = r.random() < 0.3  # a deep chain, otherwise a small tree
            for _ in range(1 if chain else r.randint(0, 4)):
                v.array_value.values.append(self.any_value(depth + 1))
        else:
            for _ in range(r.randint(0, 4)):
                v.kvlist_value.values.append(KeyValue(key=self.text()[:20], value=self.any_value(depth + 1)))
        return v

    def attributes(self, n: int) -> list[KeyValue]:
        r = self.rng
        return [KeyValue(key=r.choice(KEYS) if r.random() < 0.6 else self.text()[:30],
                         value=AnyValue(string_value=r.choice(MODELS)) if r.random() < 0.2 else self.any_value())
                for _ in range(n)]

    def request(self) -> ExportTraceServiceRequest:
        r = self.rng
        req = ExportTraceServiceRequest()
        for _ in range(r.randint(0, 3)):
            rs = req.resource_spans.add()
            rs.resource.attributes.extend(self.attributes(r.randint(0, 4)))
            for _ in range(r.randint(0, 2)):
                ss = rs.scope_spans.add()
                for _ in range(r.randint(0, 4)):
                    span = ss.spans.add()
                    span.trace_id = r.randbytes(16 if r.random() < 0.9 else r.randint(0, 20))
                    span.span_id = r.randbytes(8 if r.random() < 0.9 else r.randint(0, 10))
                    span.name = self.text()[:5000]
                    span.start_time_unix_nano = r.choice([0, 2**63, 2**64 - 1, r.getrandbits(64),
                                                          time.time_ns() + r.randint(-10**18, 10**18)]) % 2**64
                    span.end_time_unix_nano = r.getrandbits(64)
                    span.status.code = r.choice([0, 1, 2, 3, -1, 2**31 - 1])
                    span.attributes.extend(self.attributes(r.randint(0, 12)))
        return req

    def mutate(self, data: bytes) -> bytes:
        r = self.rng
        buf = bytearray(data)
        for _ in range(r.randint(1, 10)):
            if not buf:
                break
            i = r.randrange(len(buf))
            op = r.random()
            if op < 0.4:
                buf[i] = r.randrange(256)
            elif op < 0.6:
                del buf[i: i + r.randint(1, 32)]
            elif op < 0.8:
                buf[i:i] = buf[i: i + r.randint(1, 64)]
            else:
                other = r.choice(self.payloads)
                j = r.randrange(len(other))
                buf[i:i] = other[j: j + r.randint(1, 200)]
        return bytes(buf)

    def attr_dict(self) -> dict[str, str]:
        r = self.rng
        out = {"gen_ai.request.model": r.choice(MODELS)} if r.random() < 0.7 else {}
        for _ in range(r.randint(0, 8)):
            out[r.choice(KEYS) if r.random() < 0.8 else self.text()[:20]] = r.choice(
                [self.text(), str(r.randint(0, 10**6)), r.choice(ODD), r.choice(MODELS + PROVIDERS)])
        return out


class Targets:
    def __init__(self) -> None:
        self.catalog = PriceCatalog.load()
        self.chain = [Detect(), ExtractUsage(), Price(lambda: self.catalog)]
        self.limits = DecodeLimits()

    def cache_sizes(self) -> dict[str, int]:
        """Entries in each cache keyed by client input (caps: ``cache_caps()``)."""
        c = self.catalog
        return {"resolve": len(c._cache), "uniform": len(c._uniform), "unresolved": len(c._unresolved),
                "fallbacks": len(c._fallbacks), "seen_unpriced": len(self.chain[2]._seen_unpriced),
                "rendered": len(otlp_decode._RENDERED)}

    def cache_mib(self) -> float:
        """Bytes the caches above hold (containers, key tuples, strings, values; each object once), MiB."""
        c = self.catalog
        seen: set[int] = set()
        total = 0

        def add(obj: object) -> None:
            nonlocal total
            if id(obj) in seen:
                return
            seen.add(id(obj))
            total += sys.getsizeof(obj)
            if isinstance(obj, tuple):
                for item in obj:
                    add(item)

        for container in (c._cache, c._uniform, c._unresolved, c._fallbacks, self.chain[2]._seen_unpriced,
                          otlp_decode._RENDERED):
            add(container)
            for key in container:
                add(key)
                if isinstance(container, dict) and not isinstance(container[key], (bool, type(None))):
                    add(container[key])
        return round(total / 2**20, 1)

    def run_chain(self, records: list[SpanRecord]) -> None:
        kept = []
        for record in records:
            try:
                for stage in self.chain:
                    record = stage(record)
            except Drop:
                continue
            if record.cost_pusd is not None and record.cost_pusd < 0:
                raise AssertionError(f"negative cost {record.cost_pusd}")
            kept.append(record)
        records_to_arrow(kept)

    def scan(self, payload: bytes) -> DecodedBatch | str | None:
        """The receiver's wire scan: its batch, a request limit's message, or None (left to protobuf)."""
        try:
            scan = scan_request(payload, self.limits)
        except LimitExceeded as exc:
            return str(exc)
        return None if scan is None else decode_scan(scan, payload, self.limits)

    def decode(self, payload: bytes) -> None:
        scanned = self.scan(payload)  # must be protobuf's answer whenever it answers
        try:
            request = parse_request(payload)
        except DecodeError:
            if scanned is not None:
                raise AssertionError("the wire scan read a request protobuf refuses") from None
            return
        try:
            batch = decode_spans(request, self.limits)
        except LimitExceeded as exc:
            if scanned is not None and scanned != str(exc):
                raise AssertionError("the wire scan and protobuf disagree on a request limit") from None
            return
        if scanned is not None and scanned != batch:
            raise AssertionError("the wire scan's records differ from protobuf's")
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        if len(batch.records) + batch.rejected_count != spans:
            raise AssertionError("a span was neither a record nor a counted rejection")
        for rec in batch.records:
            for value in rec.attributes.values():
                if len(value.encode()) > self.limits.max_value_bytes:
                    raise AssertionError("attribute over the value limit")
        self.run_chain(batch.records)

    def usage(self, attrs: dict[str, str]) -> None:
        record = SpanRecord(trace_id="0" * 32, span_id="1" * 16, parent_span_id="", start_time_ns=time.time_ns(),
                            duration_ns=1, service_name="s", span_name="chat", status_code=0,
                            resource_attributes={}, attributes=attrs, tenant="")
        self.run_chain([record])

    def pricing(self, gen: Gen) -> None:
        r = gen.rng
        provider = r.choice(PROVIDERS) if r.random() < 0.7 else gen.text()[:30]
        model = r.choice(MODELS) if r.random() < 0.6 else gen.text()[:60]
        i = r.randint(0, MAX_TOKENS)
        o = r.randint(0, MAX_TOKENS)
        cr = r.randint(0, i)
        usage = TokenUsage(i, o, cr, r.randint(0, i - cr), r.randint(0, o))
        at = r.choice([0, time.time_ns(), r.getrandbits(63)])
        attrs = {"openai.response.service_tier": r.choice(["flex", "priority", "batch", gen.text()])}
        quote = self.catalog.quote(provider, model, at, usage, attrs)
        if quote is None:
            return
        if quote.cost_pusd < 0:
            raise AssertionError(f"negative cost {quote}")
        more = dataclasses.replace(usage, input_tokens=i + r.randint(0, 10**6), output_tokens=o + r.randint(0, 10**6))
        again = self.catalog.quote(provider, model, at, more, attrs)
        if again is None or again.cost_pusd < quote.cost_pusd:
            raise AssertionError(f"not monotone: {quote.cost_pusd} -> {again}")


def _checkpoint(n: int, elapsed: float, rss: int, targets: Targets) -> dict[str, object]:
    """RSS next to what could account for it: cache entries, glibc heap (in use, free), Python objects
    (pymalloc blocks in use), Arrow's pool."""
    import pyarrow as pa

    return {"inputs": n, "s": round(elapsed), "rss_mib": round(rss / 2**20, 1), "malloc_mib": _mallinfo(),
            "py_blocks": sys.getallocatedblocks(),
            "arrow_mib": round(pa.total_allocated_bytes() / 2**20, 1), "caches": targets.cache_sizes(),
            "caches_mib": targets.cache_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: no limit)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds one input may take (else: a hang)")
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument("--out", default="fuzz-out", help="directory for failing inputs and the summary")
    parser.add_argument("--small-caches", action="store_true",
                        help="cap every cache keyed by client input at 1/64 of its size, so a short run shows "
                             "memory with all of them full")
    args = parser.parse_args()
    caps = shrink_caches() if args.small_caches else cache_caps()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import logging

    import structlog

    # unresolved-model warnings for random names would drown the progress lines
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    gen = Gen(args.seed)
    targets = Targets()
    proc = psutil.Process()
    warm_up()  # numba loads (or compiles) the wire scan once, before any input is timed
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"wire": 0, "structured": 0, "usage": 0, "pricing": 0}
    failures: list[dict[str, object]] = []
    hangs = 0
    slowest = 0.0
    rss_series: list[tuple[float, float]] = []
    checkpoints: list[dict[str, object]] = []
    started = last = time.monotonic()
    peak = proc.memory_info().rss
    n = 0
    while n < args.inputs and not (args.seconds and time.monotonic() - started > args.seconds):
        kind = ("wire", "structured", "usage", "pricing")[n % 4]
        payload: object = None
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.time_limit)
        try:
            if kind == "wire":
                payload = gen.mutate(gen.rng.choice(gen.payloads))
                targets.decode(payload)
            elif kind == "structured":
                payload = gen.request().SerializeToString()
                targets.decode(payload)
            elif kind == "usage":
                payload = gen.attr_dict()
                targets.usage(payload)
            else:
                targets.pricing(gen)
        except Hang:
            hangs += 1
            (out / f"hang-{n}.bin").write_bytes(repr(payload).encode() if not isinstance(payload, bytes) else payload)
        except Exception as exc:  # noqa: BLE001 - every other exception is a finding
            signal.setitimer(signal.ITIMER_REAL, 0)
            if len(failures) < 50:
                name = f"fail-{n}-{kind}.bin"
                data = payload if isinstance(payload, bytes) else repr(payload).encode()
                (out / name).write_bytes(data)
                failures.append({"input": n, "target": kind, "error": f"{type(exc).__name__}: {exc}"[:300],
                                 "file": name, "trace": traceback.format_exc()[-1500:]})
            else:
                failures.append({"input": n, "target": kind, "error": type(exc).__name__})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t0)
        counts[kind] += 1
        n += 1
        now = time.monotonic()
        if now - last >= args.report_every:
            last = now
            rss = proc.memory_info().rss
            peak = max(peak, rss)
            rss_series.append((round(now - started), round(rss / 2**20, 1)))
            point = _checkpoint(n, now - started, rss, targets)
            checkpoints.append(point)
            print(f"[{now - started:7.0f}s] inputs {n:,} ({n / (now - started):,.0f}/s) failures {len(failures)} "
                  f"hangs {hangs} rss {rss / 2**20:.0f} MiB (peak {peak / 2**20:.0f}) slowest {slowest:.3f}s "
                  f"malloc {point['malloc_mib']} py blocks {point['py_blocks']:,} arrow {point['arrow_mib']} "
                  f"caches {point['caches_mib']} MiB {point['caches']}", flush=True)
    elapsed = time.monotonic() - started
    rss = proc.memory_info().rss
    rss_series.append((round(elapsed), round(rss / 2**20, 1)))
    checkpoints.append(_checkpoint(n, elapsed, rss, targets))
    summary = {"inputs": n, "by_target": counts, "seconds": round(elapsed, 1), "failures": len(failures),
               "hangs": hangs, "time_limit_s": args.time_limit, "slowest_input_s": round(slowest, 3),
               "peak_rss_mib": round(max(peak, rss) / 2**20, 1), "rss_mib_over_time": rss_series,
               "cache_caps": caps, "checkpoints": checkpoints, "first_failures": failures[:10], "seed": args.seed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("rss_mib_over_time", "checkpoints")}, indent=2))
    print(f"rss MiB over time (s, MiB): {rss_series}")
    return 1 if failures or hangs else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
