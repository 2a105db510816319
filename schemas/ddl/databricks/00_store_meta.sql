-- store_meta: facts about the store itself. schema_version says which layout
-- its tables have; obolus init migrates an older store, and every command
-- refuses a newer one. Key name.
CREATE TABLE IF NOT EXISTS store_meta (
    name  STRING NOT NULL COMMENT 'What the row says, e.g. schema_version.',
    value STRING NOT NULL COMMENT 'Its value.'
)
USING DELTA
COMMENT 'Facts about the store itself: schema_version is the layout of its tables (schemas.StoreVersion).';
