-- dead_letters: input records obolus could not use (schemas.DeadLetter).
-- Key (source, location), kept unique by MERGE. Clustered by source: a
-- dead-letter hunt starts from the table or file that produced them.
CREATE TABLE IF NOT EXISTS dead_letters (
    source           STRING NOT NULL COMMENT 'Where the record came from: a file path, a table or a topic.',
    location         STRING NOT NULL COMMENT 'Place of the record in the source: line 12, row 40, or partition 3 offset 1234.',
    kind             STRING NOT NULL COMMENT 'What the record should have been: usage or agent_request.',
    field            STRING NOT NULL COMMENT 'The field that made the record unusable; empty when the record as a whole did not parse.',
    reason           STRING NOT NULL COMMENT 'Why the record was rejected.',
    record           STRING NOT NULL COMMENT 'The raw record, cut to 4096 bytes; invalid UTF-8 replaced by U+FFFD.',
    run_id           STRING NOT NULL COMMENT 'Run that dead-lettered the record (runs.run_id).',
    dead_lettered_at TIMESTAMP       COMMENT 'When the record was dead-lettered, UTC.'
)
USING DELTA
CLUSTER BY (source)
COMMENT 'Input records obolus could not use, with the reason. Key (source, location): re-reading the same record overwrites its row.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
