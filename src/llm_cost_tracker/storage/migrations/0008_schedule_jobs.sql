-- One row per planned job of a solved task batch (issue 20, "plans vs reality"). `job_id` is
-- `<batch_id>/<job id>`: spans that carry it in the attribute `llm_cost_tracker.job_id` (the key is the
-- setting scheduler_job_id_attribute) are that job's calls. Costs are exact decimals in USD.
-- Saving a batch again (a redelivered Kafka batch) keeps one row per (batch_id, job): the inserts carry
-- a deduplication token and the engine replaces on merge; reads use FINAL.
CREATE TABLE IF NOT EXISTS schedule_jobs
(
    batch_id              String,
    name                  String,
    tenant                String,
    source                LowCardinality(String),
    job                   String,
    job_id                String,
    model                 LowCardinality(String),
    tier                  LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    planned_start_seconds Float64,
    planned_seconds       Float64,
    planned_cost_usd      Decimal(38, 12),
    planned_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (batch_id, job)
SETTINGS non_replicated_deduplication_window = 1000;

-- Planned against actual per job, spans matched by the default key `llm_cost_tracker.job_id` (a plan of
-- a tenant matches only that tenant's spans; a plan made without a tenant matches every tenant's).
-- `report --by job-batch` runs the same query with the configured key and adds the batch totals.
CREATE VIEW IF NOT EXISTS schedule_job_actuals AS
SELECT j.batch_id AS batch_id, j.name AS name, j.tenant AS tenant, j.job AS job, j.job_id AS job_id,
       j.model AS model, j.tier AS tier, j.planned_start_seconds AS planned_start_seconds,
       j.planned_seconds AS planned_seconds, j.planned_cost_usd AS planned_cost_usd,
       sumIf(a.span_count, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant)) AS spans,
       sumIf(a.span_unpriced, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant)) AS unpriced_spans,
       sumIf(a.span_cost, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant)) AS actual_cost_usd,
       minIf(a.span_first_ns, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant)) AS first_start_ns,
       maxIf(a.span_last_ns, a.span_job_id != '' AND (j.tenant = '' OR a.span_tenant = j.tenant)) AS last_end_ns
FROM (SELECT * FROM schedule_jobs FINAL) AS j
LEFT JOIN
(
    SELECT attributes['llm_cost_tracker.job_id'] AS span_job_id, tenant AS span_tenant, count() AS span_count,
           countIf(cost_usd IS NULL) AS span_unpriced, sum(ifNull(cost_usd, toDecimal128(0, 12))) AS span_cost,
           min(toUnixTimestamp64Nano(timestamp)) AS span_first_ns,
           max(toUnixTimestamp64Nano(timestamp) + toInt64(duration_ns)) AS span_last_ns
    FROM llm_spans
    WHERE attributes['llm_cost_tracker.job_id'] != '' AND pricing_status != 'duplicate'
    GROUP BY span_job_id, span_tenant
) AS a ON a.span_job_id = j.job_id
GROUP BY batch_id, name, tenant, job, job_id, model, tier, planned_start_seconds, planned_seconds, planned_cost_usd;
