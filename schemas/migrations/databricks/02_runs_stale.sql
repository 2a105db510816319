-- Version 2: runs count the rows a run did not write because the store held
-- a newer answer.
ALTER TABLE runs ADD COLUMNS (
    stale BIGINT COMMENT 'Attribution rows not written because the store held their invocation at a higher version (a later run or a stream).',
    stale_invocations BIGINT COMMENT 'Invocations whose stored answer was newer than the run''s and was kept.'
);
