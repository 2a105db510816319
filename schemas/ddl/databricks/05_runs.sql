-- runs: one row per batch run, for audit and for checking that tokens in
-- equal tokens out. Key run_id. Small: no clustering.
CREATE TABLE IF NOT EXISTS runs (
    run_id           STRING NOT NULL COMMENT 'Run id, stamped on the attribution and dead-letter rows the run wrote.',
    job              STRING NOT NULL COMMENT 'Job name (checkpoints.job).',
    started_at       TIMESTAMP       COMMENT 'When the run started, UTC.',
    finished_at      TIMESTAMP       COMMENT 'When the run finished, UTC; NULL while running.',
    window_from      TIMESTAMP       COMMENT 'Inclusive start of the event-time window the run processed, UTC.',
    window_to        TIMESTAMP       COMMENT 'Exclusive end of the event-time window the run processed, UTC.',
    rows_read        BIGINT NOT NULL COMMENT 'Usage rows read from the sources.',
    outside_window   BIGINT NOT NULL COMMENT 'Usage rows read but dropped because their event_time fell outside the window.',
    duplicates       BIGINT NOT NULL COMMENT 'Usage rows dropped as repeats of an invocation_id already read.',
    dead_lettered    BIGINT NOT NULL COMMENT 'Input records sent to dead_letters.',
    attributed       BIGINT NOT NULL COMMENT 'Invocations assigned to an end user.',
    unattributed     BIGINT NOT NULL COMMENT 'Invocations left with the requester (match_method unattributed).',
    input_tokens_in  BIGINT NOT NULL COMMENT 'Sum of input_tokens over the usage rows attributed (read, less dropped and dead-lettered).',
    total_tokens_in  BIGINT NOT NULL COMMENT 'Sum of total_tokens over the same usage rows.',
    total_tokens_out BIGINT NOT NULL COMMENT 'Sum of total_tokens over the attribution rows written; equals total_tokens_in when nothing was lost.',
    status           STRING NOT NULL COMMENT 'running, ok or failed.',
    error            STRING NOT NULL COMMENT 'Error message of a failed run; empty otherwise.',
    stale            BIGINT          COMMENT 'Attribution rows not written because the store held their invocation at a higher version (a later run or a stream).',
    stale_invocations BIGINT         COMMENT 'Invocations whose stored answer was newer than the run''s and was kept.'
)
USING DELTA
COMMENT 'One row per batch run; recording a run again with the same run_id updates it (e.g. running, then ok).'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
