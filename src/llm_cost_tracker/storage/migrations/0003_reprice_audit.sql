-- Repricing: one row per run (append-only status log) and one row per span whose stored cost changed.
-- ``copies`` counts stored rows of the span (a span inserted twice without a token is two rows).
CREATE TABLE IF NOT EXISTS reprice_runs
(
    run_id      String,
    at          DateTime64(3, 'UTC') DEFAULT now64(3),
    status      LowCardinality(String),
    since       DateTime64(9, 'UTC'),
    model       String,
    price_note  String,
    spans       UInt64,
    changed     UInt64,
    cost_delta_usd Decimal(38, 12)
)
ENGINE = MergeTree
ORDER BY (run_id, at);

CREATE TABLE IF NOT EXISTS reprice_audit
(
    run_id            String,
    trace_id          String,
    span_id           String,
    timestamp         DateTime64(9, 'UTC'),
    tenant            LowCardinality(String),
    service_name      LowCardinality(String),
    provider          LowCardinality(String),
    model             LowCardinality(String),
    copies            UInt32,
    output_tokens     UInt64,
    input_tokens      UInt64,
    old_cost_usd      Nullable(Decimal(38, 12)),
    new_cost_usd      Nullable(Decimal(38, 12)),
    old_cache_savings_usd Nullable(Decimal(38, 12)),
    new_cache_savings_usd Nullable(Decimal(38, 12)),
    old_pricing_model LowCardinality(String),
    new_pricing_model LowCardinality(String),
    old_price_version LowCardinality(String),
    new_price_version LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY (run_id, trace_id, span_id)
SETTINGS non_replicated_deduplication_window = 1000;
