-- Budgets managed at run time (PUT/DELETE /v1/budgets/{name}, issue 21): one row per change, the
-- highest `version` (insert time in ns) per name wins: reads take argMax(..., version), so the answer
-- does not depend on merges; ReplacingMergeTree only lets old versions go. `definition` is the budget
-- as a JSON object with the keys of a [[budgets]] table; `deleted` = 1 removes the name. Budgets of
-- the config file are not stored here: the file stays the source of the ones it declares.
CREATE TABLE IF NOT EXISTS budget_definitions
(
    name        String,
    definition  String,
    deleted     UInt8,
    version     UInt64,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY name;
