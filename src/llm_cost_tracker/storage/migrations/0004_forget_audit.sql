-- One row per step of a `forget --user` run: the GDPR erasure path. The person is recorded only as
-- the SHA-256 of their id, so the audit itself holds no personal data.
CREATE TABLE IF NOT EXISTS forget_audit
(
    run_id         String,
    user_sha256    String,
    status         LowCardinality(String),
    spans          UInt64,
    cost_usd       Decimal(38, 12),
    at             DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (user_sha256, run_id, at)
