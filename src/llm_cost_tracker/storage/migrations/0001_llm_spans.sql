-- One row per priced (or unpriced) LLM span. Costs are exact decimals in USD (NULL = could not be priced).
--
-- Sort key: tenant first (every tenant-scoped question reads a contiguous range), then the UTC day
-- (time windows inside a tenant), then the columns reports group by, then the timestamp.
-- Monthly partitions: windows prune whole months, and a day-based TTL drops whole parts.
-- non_replicated_deduplication_window: a batch re-inserted with the same insert_deduplication_token
-- (a redelivered Kafka batch) is a no-op; Replicated engines deduplicate through Keeper instead.
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
    model               LowCardinality(String) DEFAULT if(response_model != '', response_model, request_model),
    pricing_model       LowCardinality(String),
    price_version       LowCardinality(String),
    dialect             LowCardinality(String),
    input_tokens        UInt64 CODEC(T64, ZSTD(1)),
    output_tokens       UInt64 CODEC(T64, ZSTD(1)),
    cache_read_tokens   UInt64 CODEC(T64, ZSTD(1)),
    cache_write_tokens  UInt64 CODEC(T64, ZSTD(1)),
    reasoning_tokens    UInt64 CODEC(T64, ZSTD(1)),
    cost_usd            Nullable(Decimal(38, 12)) CODEC(ZSTD(1)),
    reported_cost_usd   Nullable(Decimal(38, 12)) CODEC(ZSTD(1)),
    cache_savings_usd   Nullable(Decimal(38, 12)) DEFAULT NULL CODEC(ZSTD(1)),
    pricing_status      LowCardinality(String),
    duration_ns         UInt64 CODEC(T64, ZSTD(1)),
    status_code         UInt8,
    conversation_id     String DEFAULT attributes['gen_ai.conversation.id'] CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes          Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_conversation_id conversation_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, toDate(timestamp), service_name, model, timestamp)
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
