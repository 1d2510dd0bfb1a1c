"""Erase one person's spans (the GDPR path): raw rows deleted, rollups corrected, an audit kept.

A person is found by ``enduser.id`` or ``user.id`` in the span or resource attributes. The rollups
are corrected set-wise by inserting the negated sums of the person's spans into each bucket (UInt64
counters take the negation as two's complement; ``sum`` wraps back to the right total), then the
raw rows are deleted with a mutation, which rewrites the parts that held them. Latency quantile
states are not recomputed: they hold durations, not identities, and cannot be subtracted.

A run interrupted between the two steps is finished by the next call for the same person: the
rollup correction is re-sent with the same deduplication token, so it applies once.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llm_cost_tracker.storage.client import DEDUP_SETTINGS

USER_KEYS = ("enduser.id", "user.id")
_MATCH = " OR ".join(f"{where}['{key}'] = {{user:String}}"
                     for where in ("attributes", "resource_attributes") for key in USER_KEYS)
_BUCKETS = {"llm_spend_hourly": ("hour", "toStartOfHour(toDateTime(timestamp, 'UTC'))"),
            "llm_spend_daily": ("day", "toDate(timestamp, 'UTC')")}
_NEGATED_SUMS = """
INSERT INTO {table} ({bucket_column}, tenant, service_name, provider, model, requests, error_requests,
    unpriced_requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    priced_output_tokens, unpriced_input_tokens, unpriced_output_tokens, cost_usd, cache_savings_usd)
SELECT {bucket} AS b, tenant, service_name, provider, model,
    0 - count(), 0 - countIf(status_code = 2), 0 - countIf(cost_usd IS NULL),
    0 - sum(input_tokens), 0 - sum(output_tokens), 0 - sum(cache_read_tokens), 0 - sum(cache_write_tokens),
    0 - sum(reasoning_tokens), 0 - sumIf(output_tokens, cost_usd IS NOT NULL),
    0 - sumIf(input_tokens, cost_usd IS NULL), 0 - sumIf(output_tokens, cost_usd IS NULL),
    0 - sum(ifNull(cost_usd, toDecimal128(0, 12))), 0 - sum(ifNull(cache_savings_usd, toDecimal128(0, 12)))
FROM llm_spans WHERE ({match}) AND pricing_status != 'duplicate'
GROUP BY b, tenant, service_name, provider, model
"""


@dataclass(frozen=True, slots=True)
class ForgetResult:
    run_id: str
    user_sha256: str
    spans: int
    cost_usd: Decimal
    dry_run: bool


def user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


def forget(client: Any, user_id: str, *, dry_run: bool = False) -> ForgetResult:
    """Delete every span of ``user_id`` and take them out of the rollups; returns what was removed."""
    if not user_id:
        raise ValueError("a user id is required")
    params = {"user": user_id}
    digest = user_hash(user_id)
    spans, cost = client.query(f"SELECT count(), sum(ifNull(cost_usd, toDecimal128(0, 12))) FROM llm_spans "
                               f"WHERE {_MATCH}", parameters=params).result_rows[0]
    pending = client.query("SELECT run_id FROM forget_audit WHERE user_sha256 = {h:String} GROUP BY run_id "
                           "HAVING countIf(status = 'done') = 0 LIMIT 1", parameters={"h": digest}).result_rows
    run_id = pending[0][0] if pending else uuid.uuid4().hex[:16]
    result = ForgetResult(run_id, digest, int(spans), Decimal(cost or 0), dry_run)
    if dry_run or (spans == 0 and not pending):
        return result
    if not pending:
        _audit(client, run_id, digest, "started", spans, cost)
    for table, (column, bucket) in _BUCKETS.items():
        sql = _NEGATED_SUMS.format(table=table, bucket_column=column, bucket=bucket, match=_MATCH)
        client.command(sql, parameters=params,
                       settings=DEDUP_SETTINGS | {"insert_deduplication_token": f"forget:{run_id}:{table}"})
    client.command(f"ALTER TABLE llm_spans DELETE WHERE {_MATCH}", parameters=params,
                   settings={"mutations_sync": 2})
    _audit(client, run_id, digest, "done", spans, cost)
    return result


def _audit(client: Any, run_id: str, digest: str, status: str, spans: int, cost: Any) -> None:
    client.insert("forget_audit", [[run_id, digest, status, int(spans), Decimal(cost or 0)]],
                  column_names=["run_id", "user_sha256", "status", "spans", "cost_usd"])
