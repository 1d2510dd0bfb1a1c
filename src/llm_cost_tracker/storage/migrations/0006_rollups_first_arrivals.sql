-- The rollups count first arrivals only (issue 14): rows the call-identity stage marks
-- pricing_status = 'duplicate' (the same LLM call reported by a second instrumentation, stored with a
-- NULL cost for audit) are kept in llm_spans but are neither requests nor unpriced requests in
-- llm_spend_hourly / llm_spend_daily.
--
-- A materialized view's query cannot be altered in place on every supported store (chDB and servers
-- before ALTER TABLE ... MODIFY QUERY), so the views are dropped and created again. Their target
-- tables and their data are untouched. Migrations run before the writer starts, so no insert
-- falls between the DROP and the CREATE; on a cluster, stop the consumers while it runs
-- (docs/schema.md).
DROP VIEW IF EXISTS llm_spend_hourly_mv;

DROP VIEW IF EXISTS llm_spend_daily_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_spend_hourly_mv TO llm_spend_hourly AS
SELECT
    hour, tenant, service_name, provider, model,
    count() AS requests,
    countIf(status_code = 2) AS error_requests,
    countIf(NOT priced) AS unpriced_requests,
    sum(in_tokens) AS input_tokens,
    sum(out_tokens) AS output_tokens,
    sum(cr_tokens) AS cache_read_tokens,
    sum(cw_tokens) AS cache_write_tokens,
    sum(rs_tokens) AS reasoning_tokens,
    sumIf(out_tokens, priced) AS priced_output_tokens,
    sumIf(in_tokens, NOT priced) AS unpriced_input_tokens,
    sumIf(out_tokens, NOT priced) AS unpriced_output_tokens,
    sum(cost) AS cost_usd,
    sum(savings) AS cache_savings_usd,
    quantileTDigestState(latency) AS latency_ms
FROM
(
    SELECT
        toStartOfHour(toDateTime(timestamp, 'UTC')) AS hour, tenant, service_name, provider, model, status_code,
        cost_usd IS NOT NULL AS priced,
        input_tokens AS in_tokens, output_tokens AS out_tokens, cache_read_tokens AS cr_tokens,
        cache_write_tokens AS cw_tokens, reasoning_tokens AS rs_tokens,
        ifNull(cost_usd, toDecimal128(0, 12)) AS cost,
        ifNull(cache_savings_usd, toDecimal128(0, 12)) AS savings,
        duration_ns / 1e6 AS latency
    FROM llm_spans
    WHERE pricing_status != 'duplicate'
)
GROUP BY hour, tenant, service_name, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_spend_daily_mv TO llm_spend_daily AS
SELECT
    day, tenant, service_name, provider, model,
    count() AS requests,
    countIf(status_code = 2) AS error_requests,
    countIf(NOT priced) AS unpriced_requests,
    sum(in_tokens) AS input_tokens,
    sum(out_tokens) AS output_tokens,
    sum(cr_tokens) AS cache_read_tokens,
    sum(cw_tokens) AS cache_write_tokens,
    sum(rs_tokens) AS reasoning_tokens,
    sumIf(out_tokens, priced) AS priced_output_tokens,
    sumIf(in_tokens, NOT priced) AS unpriced_input_tokens,
    sumIf(out_tokens, NOT priced) AS unpriced_output_tokens,
    sum(cost) AS cost_usd,
    sum(savings) AS cache_savings_usd,
    quantileTDigestState(latency) AS latency_ms
FROM
(
    SELECT
        toDate(timestamp, 'UTC') AS day, tenant, service_name, provider, model, status_code,
        cost_usd IS NOT NULL AS priced,
        input_tokens AS in_tokens, output_tokens AS out_tokens, cache_read_tokens AS cr_tokens,
        cache_write_tokens AS cw_tokens, reasoning_tokens AS rs_tokens,
        ifNull(cost_usd, toDecimal128(0, 12)) AS cost,
        ifNull(cache_savings_usd, toDecimal128(0, 12)) AS savings,
        duration_ns / 1e6 AS latency
    FROM llm_spans
    WHERE pricing_status != 'duplicate'
)
GROUP BY day, tenant, service_name, provider, model;
