"""Reprice stored spans after a price correction: set-wise, audited, rollups kept in step.

One run (``reprice(client, price, since, model)``):

1. reads the spans since ``since`` (optionally one model; never a ``duplicate`` span, whose cost another
   span of the same call carries) grouped by ``(trace_id, span_id)`` and prices
   each with ``price``: the pipeline's own :class:`~llm_cost_tracker.transforms.price.Price` stage over
   the corrected catalog, handed in by the caller (storage sits below transforms in the layers);
2. writes one ``reprice_audit`` row per span whose cost, cache savings, pricing model or price
   version changed (old and new values) - status ``audited``;
3. updates ``llm_spans`` with ONE mutation that looks the new values up in a temporary Join table
   built from the audit rows - status ``applied``;
4. adds the differences (new - old, per hour/day bucket) to ``llm_spend_hourly`` and
   ``llm_spend_daily``: the views do not see mutations, and adding deltas is safe while spans keep
   arriving (rebuilding a bucket would race with them) - status ``done``.

Each step is idempotent (the mutation sets absolute values; the delta inserts carry a token derived
from the run id), so a run interrupted after step 2 is finished by the next ``reprice``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from llm_cost_tracker.storage.client import DEDUP_SETTINGS
from llm_cost_tracker.storage.rows import pico_to_decimal_array
from llm_cost_tracker.types import PICO_PER_USD, SpanRecord, TokenUsage

__all__ = ["PriceStage", "RepriceResult", "reprice", "resume"]

PriceStage = Callable[[SpanRecord], SpanRecord]
"""Prices one span (the pipeline's ``Price`` transform): the same rules as at ingest, by construction."""
_PICO = Decimal(PICO_PER_USD)
_SELECT = """
SELECT trace_id, span_id, toUnixTimestamp64Nano(any(timestamp)) AS ns, any(tenant), any(service_name),
       any(provider), any(model), any(request_model), any(response_model), any(input_tokens), any(output_tokens),
       any(cache_read_tokens), any(cache_write_tokens), any(reasoning_tokens), any(cost_usd),
       any(cache_savings_usd), any(pricing_model), any(price_version), any(attributes), count() AS copies
FROM llm_spans
WHERE timestamp >= {since:DateTime64(9, 'UTC')} AND ({model:String} = '' OR model = {model:String}
      OR pricing_model = {model:String}) AND pricing_status != 'duplicate'
GROUP BY trace_id, span_id
"""
_DELTA = """
INSERT INTO {table}
SELECT {bucket}, tenant, service_name, provider, model,
       0, 0,
       toUInt64(sum(copies * (toInt64(isNull(new_cost_usd)) - isNull(old_cost_usd)))),
       0, 0, 0, 0, 0,
       toUInt64(sum(copies * output_tokens * (toInt64(isNull(old_cost_usd)) - isNull(new_cost_usd)))),
       toUInt64(sum(copies * input_tokens * (toInt64(isNull(new_cost_usd)) - isNull(old_cost_usd)))),
       toUInt64(sum(copies * output_tokens * (toInt64(isNull(new_cost_usd)) - isNull(old_cost_usd)))),
       sum(copies * (ifNull(new_cost_usd, 0) - ifNull(old_cost_usd, 0))),
       sum(copies * (ifNull(new_cache_savings_usd, 0) - ifNull(old_cache_savings_usd, 0))),
       quantileTDigestStateIf(toFloat64(0), 0)
FROM reprice_audit
WHERE run_id = {run_id:String}
GROUP BY 1, tenant, service_name, provider, model
"""
# UInt64 counters take negative deltas as two's complement: sum() over UInt64 wraps, so the total is right.
_BUCKETS = {"llm_spend_hourly": "toStartOfHour(toDateTime(timestamp, 'UTC'))", "llm_spend_daily": "toDate(timestamp, 'UTC')"}


@dataclass(frozen=True, slots=True)
class RepriceResult:
    """What one run looked at and changed."""

    run_id: str
    spans: int
    changed: int
    cost_delta_usd: Decimal
    dry_run: bool = False


def _pico(value: Decimal | None) -> int | None:
    return None if value is None else int(value * _PICO)


def _record(row: tuple[Any, ...]) -> SpanRecord:
    (trace_id, span_id, ns, tenant, service, provider, _model, request_model, response_model, inp, out, cr, cw,
     reasoning, *_rest) = row
    attributes = row[18]
    return SpanRecord(trace_id=trace_id, span_id=span_id, parent_span_id="", start_time_ns=int(ns), duration_ns=0,
                      service_name=service, span_name="", status_code=0, resource_attributes={},
                      attributes=dict(attributes or {}), tenant=tenant, provider=provider,
                      request_model=request_model, response_model=response_model,
                      usage=TokenUsage(int(inp), int(out), int(cr), int(cw), int(reasoning)))


def _changes(client: Any, price: PriceStage, since: dt.datetime, model: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(spans seen, changed rows)`` per block of stored spans."""
    params = {"since": since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), "model": model}
    with client.query_rows_stream(_SELECT, parameters=params) as stream:
        block: list[tuple[Any, ...]] = []
        for row in stream:
            block.append(row)
            if len(block) >= 20_000:
                yield len(block), _diff(price, block)
                block = []
        if block:
            yield len(block), _diff(price, block)


def _diff(price: PriceStage, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        record = price(_record(row))
        old_cost, old_savings, old_pm, old_pv = _pico(row[14]), _pico(row[15]), row[16], row[17]
        if (record.cost_pusd, record.cache_savings_pusd, record.pricing_model, record.price_version) == (
                old_cost, old_savings, old_pm, old_pv):
            continue
        out.append({
            "trace_id": row[0], "span_id": row[1], "timestamp": int(row[2]), "tenant": row[3], "service_name": row[4],
            "provider": row[5], "model": row[6], "copies": int(row[19]), "output_tokens": int(row[10]),
            "input_tokens": int(row[9]), "old_cost": old_cost, "new_cost": record.cost_pusd,
            "old_savings": old_savings, "new_savings": record.cache_savings_pusd,
            "old_pricing_model": old_pm, "new_pricing_model": record.pricing_model,
            "old_price_version": old_pv, "new_price_version": record.price_version,
        })
    return out


def _audit_table(run_id: str, rows: list[dict[str, Any]]) -> pa.Table:
    def col(name: str) -> list[Any]:
        return [r[name] for r in rows]

    return pa.table({
        "run_id": pa.array([run_id] * len(rows), pa.string()),
        "trace_id": pa.array(col("trace_id"), pa.string()), "span_id": pa.array(col("span_id"), pa.string()),
        "timestamp": pa.array(col("timestamp"), pa.int64()).cast(pa.timestamp("ns", "UTC")),
        **{name: pa.array(col(name), pa.string()) for name in ("tenant", "service_name", "provider", "model")},
        "copies": pa.array(col("copies"), pa.uint32()),
        "output_tokens": pa.array(col("output_tokens"), pa.uint64()),
        "input_tokens": pa.array(col("input_tokens"), pa.uint64()),
        "old_cost_usd": pico_to_decimal_array(col("old_cost")), "new_cost_usd": pico_to_decimal_array(col("new_cost")),
        "old_cache_savings_usd": pico_to_decimal_array(col("old_savings")),
        "new_cache_savings_usd": pico_to_decimal_array(col("new_savings")),
        **{name: pa.array(col(name), pa.string()) for name in ("old_pricing_model", "new_pricing_model",
                                                               "old_price_version", "new_price_version")},
    })


def _status(client: Any, run_id: str, status: str, since: dt.datetime, model: str, spans: int = 0,
            changed: int = 0, delta: Decimal = Decimal(0)) -> None:
    client.insert("reprice_runs", [[run_id, status, since.astimezone(dt.UTC).replace(tzinfo=None), model, "",
                                    spans, changed, delta]],
                  column_names=["run_id", "status", "since", "model", "price_note", "spans", "changed",
                                "cost_delta_usd"])


def _apply(client: Any, run_id: str) -> None:
    """Steps 3 and 4 for an audited run: one mutation on llm_spans, then the rollup deltas."""
    database = client.query("SELECT currentDatabase()").result_rows[0][0]
    join = f"reprice_join_{run_id}"
    qualified = f"`{database}`.`{join}`"
    client.command(f"DROP TABLE IF EXISTS {qualified}")
    client.command(f"CREATE TABLE {qualified} (key String, cost Nullable(Decimal(38, 12)), "
                   "savings Nullable(Decimal(38, 12)), pricing_model String, price_version String) "
                   "ENGINE = Join(ANY, LEFT, key)")
    try:
        client.command(f"INSERT INTO {qualified} SELECT concat(trace_id, ':', span_id), new_cost_usd, "
                       "new_cache_savings_usd, new_pricing_model, new_price_version FROM reprice_audit "
                       "WHERE run_id = {run_id:String}", parameters={"run_id": run_id})
        since = client.query("SELECT min(timestamp) FROM reprice_audit WHERE run_id = {r:String}",
                             parameters={"r": run_id}).result_rows[0][0]
        key = "concat(trace_id, ':', span_id)"
        name = f"'{database}.{join}'"
        client.command(
            f"ALTER TABLE llm_spans UPDATE cost_usd = joinGet({name}, 'cost', {key}), "
            f"cache_savings_usd = joinGet({name}, 'savings', {key}), "
            f"pricing_model = joinGet({name}, 'pricing_model', {key}), "
            f"price_version = joinGet({name}, 'price_version', {key}), "
            f"pricing_status = if(joinGet({name}, 'cost', {key}) IS NULL, 'unpriced', 'priced') "
            f"WHERE timestamp >= {{since:DateTime64(9, 'UTC')}} AND {key} IN (SELECT key FROM {qualified}) "
            "AND pricing_status != 'duplicate'",  # duplicates stay out of the rollups, priced or not
            parameters={"since": since.strftime("%Y-%m-%d %H:%M:%S.%f")}, settings={"mutations_sync": 2},
        )
    finally:
        client.command(f"DROP TABLE IF EXISTS {qualified}")
    for table, bucket in _BUCKETS.items():
        client.command(_DELTA.replace("{table}", table).replace("{bucket}", bucket), parameters={"run_id": run_id},
                       settings=DEDUP_SETTINGS | {"insert_deduplication_token": f"reprice:{run_id}:{table}"})


def resume(client: Any) -> list[str]:
    """Finish runs that were audited but not completed (idempotent); returns their ids."""
    rows = client.query(
        "SELECT run_id, argMax(status, at), any(since), any(model) FROM reprice_runs GROUP BY run_id "
        "HAVING argMax(status, at) = 'audited'"
    ).result_rows
    for run_id, _status_now, since, model in rows:
        _apply(client, run_id)
        _status(client, run_id, "done", since.replace(tzinfo=dt.UTC), model)
    return [r[0] for r in rows]


def reprice(client: Any, price: PriceStage, since: dt.datetime, model: str = "", *, dry_run: bool = False,
            run_id: str | None = None) -> RepriceResult:
    """Reprice the spans stored since ``since`` (optionally only ``model``) with ``price``.

    Args:
        client: clickhouse-connect client on the migrated database.
        price: the ingest's price stage over the corrected catalog,
            ``transforms.price.Price(lambda: catalog)``.
        since: first span time to reprice (UTC).
        model: only spans whose ``model`` or ``pricing_model`` is this (``""``: all).
        dry_run: compute and report the changes, write nothing.
        run_id: the audit id (default: a new random one).
    """
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    if not dry_run:
        resume(client)
    run_id = run_id or uuid.uuid4().hex[:16]
    spans = changed = 0
    delta = 0
    if not dry_run:
        _status(client, run_id, "started", since, model)
    for seen, rows in _changes(client, price, since, model):
        spans += seen
        changed += len(rows)
        delta += sum(r["copies"] * ((r["new_cost"] or 0) - (r["old_cost"] or 0)) for r in rows)
        if rows and not dry_run:
            client.insert_arrow("reprice_audit", _audit_table(run_id, rows),
                                settings=DEDUP_SETTINGS | {"insert_deduplication_token": f"{run_id}:{spans}"})
    result = RepriceResult(run_id, spans, changed, Decimal(delta) / _PICO, dry_run)
    if dry_run:
        return result
    _status(client, run_id, "audited", since, model, spans, changed, result.cost_delta_usd)
    if changed:
        _apply(client, run_id)
    _status(client, run_id, "done", since, model, spans, changed, result.cost_delta_usd)
    return result
