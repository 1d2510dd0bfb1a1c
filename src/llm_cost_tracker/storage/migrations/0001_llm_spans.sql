-- One row per priced (or unpriced) LLM span. Costs are exact decimals in USD.
CREATE TABLE IF NOT EXISTS llm_spans
(
    timestamp           DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    tenant              LowCardinality(String),
    trace_id            String CODEC(ZSTD(1)),
    span_id             String CODEC(ZSTD(1)),
    parent_span_id      String CODEC(ZSTD(1)),
    service_name        LowCardinality(String),
    span_name           LowCardinality(String),
    operation           LowCardinality(String),
    provider            LowCardinality(String),
    request_model       LowCardinality(String),
    response_model      LowCardinality(String),
    pricing_model       LowCardinality(String),
    price_version       LowCardinality(String),
    dialect             LowCardinality(String),
    input_tokens        UInt64 CODEC(T64, ZSTD(1)),
    output_tokens       UInt64 CODEC(T64, ZSTD(1)),
    cache_read_tokens   UInt64 CODEC(T64, ZSTD(1)),
    cache_write_tokens  UInt64 CODEC(T64, ZSTD(1)),
    reasoning_tokens    UInt64 CODEC(T64, ZSTD(1)),
    cost_usd            Nullable(Decimal(38, 12)),
    reported_cost_usd   Nullable(Decimal(38, 12)),
    pricing_status      LowCardinality(String),
    duration_ns         UInt64 CODEC(T64, ZSTD(1)),
    status_code         UInt8,
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, service_name, provider, response_model, timestamp)
