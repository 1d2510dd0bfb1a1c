-- Each raw row remembers which insert stored it (issue 14): a 64-bit hash of the batch's insert
-- deduplication token (a Kafka batch's topic, partition, offset range and content hash; a random id
-- for an in-process batch). Span identity uses it to tell "stored by an earlier attempt of this
-- same batch" (a writer killed after llm_spans took the rows and before the rollup views did: the
-- batch is sent again under the same token, the raw insert is a no-op and the views are completed)
-- from "stored by another batch" (a true copy: left out). 0 = stored before this column existed.
ALTER TABLE llm_spans ADD COLUMN IF NOT EXISTS insert_token UInt64 DEFAULT 0 CODEC(ZSTD(1));
