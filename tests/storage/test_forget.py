"""``forget --user``: a person's spans leave the raw table and the rollups, and only a hash is audited."""

from decimal import Decimal

from llm_cost_tracker.sinks.clickhouse import ClickHouseSink
from llm_cost_tracker.storage.forget import forget, user_hash
from llm_cost_tracker.testing import span_record
from llm_cost_tracker.types import SpanRecord, TokenUsage

HOUR_NS = 3_600 * 10**9
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def span(i: int, user: str, cost: int | None, hour: int, key: str = "user.id") -> SpanRecord:
    return span_record(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", start_time_ns=T0 + hour * HOUR_NS + i, service_name="chat",
        status_code=2 if i % 5 == 0 else 0, attributes={key: user}, tenant="acme", provider="openai",
        request_model="gpt-4o", response_model="gpt-4o", usage=TokenUsage(100 + i, 10 + i, i, 0, 0), cost_pusd=cost,
    )


ROLLUP = ("SELECT {b}, sum(requests), sum(error_requests), sum(unpriced_requests), sum(input_tokens), "
          "sum(output_tokens), sum(cache_read_tokens), sum(cost_usd) FROM {t} GROUP BY {b} ORDER BY {b}")
RAW = ("SELECT {f} AS b, count(), countIf(status_code = 2), countIf(cost_usd IS NULL), sum(input_tokens), "
       "sum(output_tokens), sum(cache_read_tokens), sum(ifNull(cost_usd, toDecimal128(0, 12))) FROM llm_spans "
       "GROUP BY b ORDER BY b")


def test_forget_removes_raw_rows_and_rollup_sums(store) -> None:
    """After forgetting Alice, raw rows and every rollup sum equal what Bob's spans alone give."""
    records = [span(i, "alice" if i % 3 == 0 else "bob", None if i % 7 == 0 else 1_000_000 * i, i % 4,
                    key="enduser.id" if i % 2 else "user.id") for i in range(1, 60)]
    ClickHouseSink(store).write(records, dedup_token="batch-1")
    alice = [r for r in records if r.attributes.get("user.id", r.attributes.get("enduser.id")) == "alice"]

    dry = forget(store, "alice", dry_run=True)
    assert dry.spans == len(alice) and store.query("SELECT count() FROM llm_spans").result_rows[0][0] == 59

    result = forget(store, "alice")
    assert result.spans == len(alice)
    assert result.cost_usd == Decimal(sum(r.cost_pusd or 0 for r in alice)) / 10**12
    users = {r[0] for r in store.query("SELECT arrayJoin(mapValues(attributes)) FROM llm_spans").result_rows}
    assert users == {"bob"}
    for table, bucket, raw in (("llm_spend_hourly", "hour", "toStartOfHour(toDateTime(timestamp, 'UTC'))"),
                               ("llm_spend_daily", "day", "toDate(timestamp, 'UTC')")):
        rollup = store.query(ROLLUP.format(b=bucket, t=table)).result_rows
        assert rollup == store.query(RAW.format(f=raw)).result_rows

    audit = store.query("SELECT user_sha256, status, spans FROM forget_audit ORDER BY at").result_rows
    assert audit == [(user_hash("alice"), "started", len(alice)), (user_hash("alice"), "done", len(alice))]
    assert "alice" not in str(store.query("SELECT * FROM forget_audit").result_rows)

    again = forget(store, "alice")
    assert again.spans == 0
    assert store.query(ROLLUP.format(b="day", t="llm_spend_daily")).result_rows == \
        store.query(RAW.format(f="toDate(timestamp, 'UTC')")).result_rows
