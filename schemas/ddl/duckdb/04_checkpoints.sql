-- checkpoints: where each batch job ended, so the next run continues there.
CREATE TABLE IF NOT EXISTS checkpoints (
    job        VARCHAR   PRIMARY KEY,
    window_end TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
COMMENT ON TABLE checkpoints IS 'One row per job: the end of the last event-time window it completed.';
COMMENT ON COLUMN checkpoints.job IS 'Job name from the configuration; several schedules can share a store.';
COMMENT ON COLUMN checkpoints.window_end IS 'Exclusive end of the last completed window, UTC: the next run starts here.';
COMMENT ON COLUMN checkpoints.updated_at IS 'When the checkpoint was last set, UTC.';
