-- price_list: the price list a pushdown run applies, one row per model name
-- the engine would look up (model, alias, or databricks- prefixed name) and
-- price-list version. Rows are keyed by a digest of the whole list, so runs
-- with different lists can share the schema and a list is written once.
CREATE TABLE IF NOT EXISTS price_list (
    digest             STRING NOT NULL COMMENT 'SHA-256 of the price list the row belongs to.',
    version            STRING NOT NULL COMMENT 'Price-list version (attribution.price_list_version).',
    valid_from         TIMESTAMP       COMMENT 'First event_time the version prices, UTC; NULL for the earliest version (it also prices earlier events).',
    valid_to           TIMESTAMP       COMMENT 'First event_time it no longer prices, UTC; NULL for the latest version.',
    lookup_key         STRING NOT NULL COMMENT 'Lower-cased, trimmed destination_model or destination_name this price applies to.',
    input_per_m        DOUBLE NOT NULL COMMENT 'USD per million input tokens (cache reads and creations excluded unless input_excludes_cache).',
    output_per_m       DOUBLE NOT NULL COMMENT 'USD per million output tokens.',
    cache_read_per_m   DOUBLE NOT NULL COMMENT 'USD per million cache-read input tokens.',
    cache_create_per_m DOUBLE NOT NULL COMMENT 'USD per million cache-creation input tokens.'
)
USING DELTA
COMMENT 'Internal: price lists used by pushdown runs, keyed by digest.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
