-- staging: the managed volume pull mode uploads each window's rows to (one
-- Parquet file, removed after the MERGE that reads it). A different volume
-- can be configured with databricks.staging_volume.
CREATE VOLUME IF NOT EXISTS staging
COMMENT 'Internal: Parquet files of pull-mode writes in flight; empty between runs.';
