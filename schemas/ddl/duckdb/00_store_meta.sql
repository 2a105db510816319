-- store_meta: facts about the store itself. schema_version says which layout
-- its tables have; obolus migrates an older store and refuses a newer one.
CREATE TABLE IF NOT EXISTS store_meta (
    name  VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
COMMENT ON TABLE store_meta IS 'Facts about the store itself: schema_version is the layout of its tables (schemas.StoreVersion).';
COMMENT ON COLUMN store_meta.name IS 'What the row says, e.g. schema_version.';
COMMENT ON COLUMN store_meta.value IS 'Its value.';
