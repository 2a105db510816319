-- Version 2: runs count the rows a run did not write because the store held
-- a newer answer.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS stale BIGINT DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS stale_invocations BIGINT DEFAULT 0;
