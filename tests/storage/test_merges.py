"""Merging llm_spans's parts changes no answer a query gives (reports, rollups, trace and conversation lookups,
span identity), and the merged part keeps both bloom-filter indexes: the guard for any change to how the
table merges (docs/performance.md, "The store alone")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from llm_cost_tracker.report import ReportQuery
from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.sinks.identity import FirstArrivals

from .conftest import span

T0 = dt.datetime(2026, 3, 10, 14, 5, tzinfo=dt.UTC).timestamp()


def answers(store: Any, trace: str, conversation: str) -> dict[str, Any]:
    """What the reports, the rollups and the lookups by trace and by conversation return."""
    out: dict[str, Any] = {}
    for by in ("model", "tenant", "service"):
        for since, until in ((dt.datetime(2026, 3, 10, tzinfo=dt.UTC), dt.datetime(2026, 3, 11, tzinfo=dt.UTC)),
                             (dt.datetime(2026, 3, 10, 14, tzinfo=dt.UTC), None)):
            sql, params = ReportQuery(by, since, until).sql()
            out[f"report {by} {since} {until}"] = store.query(sql, parameters=params).result_rows
    out["raw"] = store.query(
        "SELECT tenant, model, count(), sum(input_tokens), toString(sum(cost_usd)), countIf(cost_usd IS NULL) "
        "FROM llm_spans GROUP BY tenant, model ORDER BY tenant, model").result_rows
    out["latency"] = store.query("SELECT model, round(quantileTDigestMerge(0.5)(latency_ms), 3) FROM llm_spend_hourly "
                                 "GROUP BY model ORDER BY model").result_rows
    out["trace"] = store.query("SELECT span_id, toString(cost_usd) FROM llm_spans WHERE trace_id = {t:String} "
                               "ORDER BY span_id", parameters={"t": trace}).result_rows
    out["conversation"] = store.query(
        "SELECT count(), toString(sum(cost_usd)) FROM llm_spans WHERE conversation_id = {c:String}",
        parameters={"c": conversation}).result_rows
    return out


def test_merging_the_writers_parts_changes_no_answer(store: Any) -> None:
    """Three batches merged into one part (a wide part, merged vertically, as a real store's are) give every query
    the same answer as the three parts did, and the merged part keeps both bloom-filter indexes, which the trace
    lookup still uses."""
    store.command("ALTER TABLE llm_spans MODIFY SETTING min_bytes_for_wide_part = 0")  # parts this small are compact
    sink = ClickHouseSink(store)
    models = ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5")
    batches = [[span(T0 + b * 3600 + i * 0.25, cost=None if i % 11 == 0 else 1_000 + i, tenant=f"t{i % 3}",
                     model=models[i % 3], service=f"svc-{i % 4}", trace=f"{(b * 4000 + i) // 3:032x}",
                     duration_ms=float(i % 700), tokens=(100 + i, i % 50, 0, 0, 0),
                     attributes={"gen_ai.conversation.id": f"conv-{i % 97}", "user.id": f"u{i % 13}"})
                for i in range(3000)] for b in range(3)]
    for number, batch in enumerate(batches):
        sink.write(batch, dedup_token=f"batch-{number}")
    trace, conversation = batches[1][1500].trace_id, "conv-42"
    before = answers(store, trace, conversation)
    assert len(before["trace"]) >= 1 and before["conversation"][0][0] > 0

    store.command("OPTIMIZE TABLE llm_spans FINAL")
    parts = store.query("SELECT part_type, rows, secondary_indices_compressed_bytes FROM system.parts "
                        "WHERE database = currentDatabase() AND table = 'llm_spans' AND active").result_rows
    assert len(parts) == 1 and parts[0][:2] == ("Wide", 9000) and parts[0][2] > 0
    assert answers(store, trace, conversation) == before
    plan = store.command("EXPLAIN indexes = 1 SELECT count() FROM llm_spans WHERE trace_id = {t:String}",
                         parameters={"t": trace})
    plan = plan if isinstance(plan, str) else "\n".join(map(str, plan))
    assert "idx_trace_id" in plan
    stored = [s for batch in batches for s in batch[:50]]
    fresh, repeats = FirstArrivals(store)(stored, "again")
    assert fresh == [] and repeats == len(stored)
