-- Per-entity budget state (issue 21), so that a restart keeps it.
--
-- budget_entities: the entities a per-entity budget ([budgets.scope] each = ...) tracks one by one in
-- a period, first come first kept up to the budget's max_entities; later values are folded into
-- `other`. Spend itself is never stored here: it is always read from llm_spans.
CREATE TABLE IF NOT EXISTS budget_entities
(
    budget        String,
    period_start  DateTime('UTC'),
    entity        String,
    admitted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (budget, period_start, entity)
TTL toDateTime(admitted_at) + toIntervalDay(400);

-- budget_notifications: webhook events already delivered (key = event, budget/entity, period and
-- threshold), so a restart does not send them again.
CREATE TABLE IF NOT EXISTS budget_notifications
(
    key       String,
    webhook   String,
    sent_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (webhook, key)
TTL toDateTime(sent_at) + toIntervalDay(62);
