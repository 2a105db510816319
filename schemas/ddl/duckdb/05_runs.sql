-- runs: one row per batch run, for audit and for checking that tokens in equal tokens out.
CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR   PRIMARY KEY,
    job              VARCHAR   NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    window_from      TIMESTAMP,
    window_to        TIMESTAMP,
    rows_read        BIGINT    NOT NULL,
    outside_window   BIGINT    NOT NULL,
    duplicates       BIGINT    NOT NULL,
    dead_lettered    BIGINT    NOT NULL,
    attributed       BIGINT    NOT NULL,
    unattributed     BIGINT    NOT NULL,
    input_tokens_in  BIGINT    NOT NULL,
    total_tokens_in  BIGINT    NOT NULL,
    total_tokens_out BIGINT    NOT NULL,
    status           VARCHAR   NOT NULL,
    error            VARCHAR   NOT NULL,
    stale            BIGINT    NOT NULL DEFAULT 0,
    stale_invocations BIGINT   NOT NULL DEFAULT 0
);
COMMENT ON TABLE runs IS 'One row per batch run; recording a run again with the same run_id updates it (e.g. running, then ok).';
COMMENT ON COLUMN runs.run_id IS 'Run id, stamped on the attribution and dead-letter rows the run wrote.';
COMMENT ON COLUMN runs.job IS 'Job name (checkpoints.job).';
COMMENT ON COLUMN runs.started_at IS 'When the run started, UTC.';
COMMENT ON COLUMN runs.finished_at IS 'When the run finished, UTC; NULL while running.';
COMMENT ON COLUMN runs.window_from IS 'Inclusive start of the event-time window the run processed, UTC.';
COMMENT ON COLUMN runs.window_to IS 'Exclusive end of the event-time window the run processed, UTC.';
COMMENT ON COLUMN runs.rows_read IS 'Usage rows read from the sources.';
COMMENT ON COLUMN runs.outside_window IS 'Usage rows read but dropped because their event_time fell outside the window.';
COMMENT ON COLUMN runs.duplicates IS 'Usage rows dropped as repeats of an invocation_id already read.';
COMMENT ON COLUMN runs.dead_lettered IS 'Input records sent to dead_letters.';
COMMENT ON COLUMN runs.attributed IS 'Invocations assigned to an end user.';
COMMENT ON COLUMN runs.unattributed IS 'Invocations left with the requester (match_method unattributed).';
COMMENT ON COLUMN runs.input_tokens_in IS 'Sum of input_tokens over the usage rows attributed (read, less dropped and dead-lettered).';
COMMENT ON COLUMN runs.total_tokens_in IS 'Sum of total_tokens over the same usage rows.';
COMMENT ON COLUMN runs.total_tokens_out IS 'Sum of total_tokens over the attribution rows written; equals total_tokens_in when nothing was lost.';
COMMENT ON COLUMN runs.status IS 'running, ok or failed.';
COMMENT ON COLUMN runs.error IS 'Error message of a failed run; empty otherwise.';
COMMENT ON COLUMN runs.stale IS 'Attribution rows not written because the store held their invocation at a higher version (a later run or a stream).';
COMMENT ON COLUMN runs.stale_invocations IS 'Invocations whose stored answer was newer than the run''s and was kept.';
