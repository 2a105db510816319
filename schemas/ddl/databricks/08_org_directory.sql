-- org_directory: the org directory a pushdown run applies, keyed like
-- price_list by a digest of the whole directory.
CREATE TABLE IF NOT EXISTS org_directory (
    digest      STRING NOT NULL COMMENT 'SHA-256 of the directory the row belongs to.',
    user_key    STRING NOT NULL COMMENT 'Lower-cased, trimmed end user.',
    team        STRING NOT NULL COMMENT 'Team of the end user.',
    cost_center STRING NOT NULL COMMENT 'Cost center of the end user; empty when the directory names none.'
)
USING DELTA
COMMENT 'Internal: org directories used by pushdown runs, keyed by digest.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
