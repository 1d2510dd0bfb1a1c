-- One row per solved task batch, from the `scheduler` worker (source 'kafka') or POST /v1/schedules
-- (source 'api'). `result` is the JSON result document; `input_sha256` identifies the batch text.
-- A redelivered batch must not become a second visible row: the worker reuses a stored result for
-- the same (batch_id, input_sha256), inserts carry insert_deduplication_token = batch_id/input_sha256,
-- and the engine keeps one row per batch_id (the latest) on merge; reads use FINAL.
CREATE TABLE IF NOT EXISTS schedules
(
    batch_id            String,
    input_sha256        String,
    name                String,
    source              LowCardinality(String),
    tenant              String,
    status              LowCardinality(String),
    error               String,
    result              String,
    makespan_seconds    Float64,
    cost_usd            Float64,
    fallback            LowCardinality(String),
    schedules_evaluated UInt64,
    solve_seconds       Float64,
    submitted_at        DateTime64(3, 'UTC'),
    solved_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY batch_id
SETTINGS non_replicated_deduplication_window = 1000;
