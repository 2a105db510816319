-- checkpoints: where each batch job ended, so the next run continues there.
-- Key job. A handful of rows: no clustering.
CREATE TABLE IF NOT EXISTS checkpoints (
    job        STRING NOT NULL    COMMENT 'Job name from the configuration; several schedules can share a store.',
    window_end TIMESTAMP NOT NULL COMMENT 'Exclusive end of the last completed window, UTC: the next run starts here.',
    updated_at TIMESTAMP NOT NULL COMMENT 'When the checkpoint was last set, UTC.'
)
USING DELTA
COMMENT 'One row per job: the end of the last event-time window it completed.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
