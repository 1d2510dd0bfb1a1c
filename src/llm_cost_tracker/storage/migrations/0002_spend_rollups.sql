-- Hourly and daily spend per (tenant, service, provider, model), kept by materialized views.
--
-- AggregatingMergeTree with SimpleAggregateFunction(sum) columns: background merges add rows with the
-- same key together, so a late span simply adds a row to its (past) bucket. Always read with sum()
-- and GROUP BY: rows of one bucket are merged eventually, never guaranteed.
-- The views read source columns through a subquery (an output alias like cost_usd must not
-- shadow the column it sums) and compute the bucket from the span's own timestamp, not from the insert time.
-- Dedup: the targets keep a deduplication log too, and writers insert with
-- deduplicate_blocks_in_dependent_materialized_views = 1, so a batch inserted twice with the same
-- insert_deduplication_token adds to the rollups once (tests/storage/test_rollups.py).
CREATE TABLE IF NOT EXISTS llm_spend_hourly
(
    hour                   DateTime('UTC'),
    tenant                 LowCardinality(String),
    service_name           LowCardinality(String),
    provider               LowCardinality(String),
    model                  LowCardinality(String),
    requests               SimpleAggregateFunction(sum, UInt64),
    error_requests         SimpleAggregateFunction(sum, UInt64),
    unpriced_requests      SimpleAggregateFunction(sum, UInt64),
    input_tokens           SimpleAggregateFunction(sum, UInt64),
    output_tokens          SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens      SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens     SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens       SimpleAggregateFunction(sum, UInt64),
    priced_output_tokens   SimpleAggregateFunction(sum, UInt64),
    unpriced_input_tokens  SimpleAggregateFunction(sum, UInt64),
    unpriced_output_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd               SimpleAggregateFunction(sum, Decimal(38, 12)),
    cache_savings_usd      SimpleAggregateFunction(sum, Decimal(38, 12)),
    latency_ms             AggregateFunction(quantileTDigest, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (tenant, hour, service_name, provider, model)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS llm_spend_daily
(
    day                    Date,
    tenant                 LowCardinality(String),
    service_name           LowCardinality(String),
    provider               LowCardinality(String),
    model                  LowCardinality(String),
    requests               SimpleAggregateFunction(sum, UInt64),
    error_requests         SimpleAggregateFunction(sum, UInt64),
    unpriced_requests      SimpleAggregateFunction(sum, UInt64),
    input_tokens           SimpleAggregateFunction(sum, UInt64),
    output_tokens          SimpleAggregateFunction(sum, UInt64),
    cache_read_tokens      SimpleAggregateFunction(sum, UInt64),
    cache_write_tokens     SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens       SimpleAggregateFunction(sum, UInt64),
    priced_output_tokens   SimpleAggregateFunction(sum, UInt64),
    unpriced_input_tokens  SimpleAggregateFunction(sum, UInt64),
    unpriced_output_tokens SimpleAggregateFunction(sum, UInt64),
    cost_usd               SimpleAggregateFunction(sum, Decimal(38, 12)),
    cache_savings_usd      SimpleAggregateFunction(sum, Decimal(38, 12)),
    latency_ms             AggregateFunction(quantileTDigest, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, service_name, provider, model)
SETTINGS non_replicated_deduplication_window = 1000;

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
)
GROUP BY day, tenant, service_name, provider, model;
