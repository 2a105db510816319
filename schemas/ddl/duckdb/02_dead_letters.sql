-- dead_letters: input records obolus could not use (schemas.DeadLetter).
CREATE TABLE IF NOT EXISTS dead_letters (
    source           VARCHAR   NOT NULL,
    location         VARCHAR   NOT NULL,
    kind             VARCHAR   NOT NULL,
    field            VARCHAR   NOT NULL,
    reason           VARCHAR   NOT NULL,
    record           VARCHAR   NOT NULL,
    run_id           VARCHAR   NOT NULL,
    dead_lettered_at TIMESTAMP,
    PRIMARY KEY (source, location)
);
COMMENT ON TABLE dead_letters IS 'Input records obolus could not use, with the reason. Key (source, location): re-reading the same record overwrites its row.';
COMMENT ON COLUMN dead_letters.source IS 'Where the record came from: a file path, a table or a topic.';
COMMENT ON COLUMN dead_letters.location IS 'The record''s place in the source: line 12, row 40, or partition 3 offset 1234.';
COMMENT ON COLUMN dead_letters.kind IS 'What the record should have been: usage or agent_request.';
COMMENT ON COLUMN dead_letters.field IS 'The field that made the record unusable; empty when the record as a whole did not parse.';
COMMENT ON COLUMN dead_letters.reason IS 'Why the record was rejected.';
COMMENT ON COLUMN dead_letters.record IS 'The raw record, cut to 4096 bytes; invalid UTF-8 replaced by U+FFFD.';
COMMENT ON COLUMN dead_letters.run_id IS 'Run that dead-lettered the record (runs.run_id).';
COMMENT ON COLUMN dead_letters.dead_lettered_at IS 'When the record was dead-lettered, UTC.';
