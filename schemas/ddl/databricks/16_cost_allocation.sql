-- cost_allocation: the bill allocated to invocation × end user, as obolus
-- report chargeback --persist computed it (sink/report, Persist). One row per
-- attribution row of the allocated period, plus one per billed hour ×
-- endpoint × model without usage (match_method no_usage, invocation_id and
-- end_user empty), so allocated_cost sums to the bill.
-- Versioned by bill snapshot: snapshot_id digests the billing records the
-- allocation used; persisting a period replaces its hours' rows (INSERT ...
-- REPLACE WHERE, one atomic Delta commit); the same bill keeps the first
-- computed_at, so re-persisting an unchanged bill changes nothing.
-- Liquid clustering on (event_date, end_user), as attribution: analysts
-- filter by month, then by user or team, and the replace is bounded by hour.
CREATE TABLE IF NOT EXISTS cost_allocation (
    snapshot_id       STRING NOT NULL         COMMENT 'Digest of the billing records the allocation used (record ids, record types, quantities, prices); a restated bill gives a new one.',
    computed_at       TIMESTAMP NOT NULL      COMMENT 'When this snapshot was first persisted, UTC; re-persisting the same bill keeps it.',
    period_start      TIMESTAMP NOT NULL      COMMENT 'Start of the allocated period (inclusive), UTC.',
    period_end        TIMESTAMP NOT NULL      COMMENT 'End of the allocated period (exclusive), UTC.',
    hour              TIMESTAMP NOT NULL      COMMENT 'The billed hour (UTC) whose cost the row carries a share of.',
    event_date        DATE NOT NULL           COMMENT 'UTC date of hour.',
    invocation_id     STRING NOT NULL         COMMENT 'Gateway invocation (attribution.invocation_id); empty on no_usage rows.',
    end_user          STRING NOT NULL         COMMENT 'End user (attribution.end_user; the service principal when unattributed); empty on no_usage rows.',
    team              STRING NOT NULL         COMMENT 'Team of the end user.',
    cost_center       STRING NOT NULL         COMMENT 'Cost center of the end user.',
    agent_endpoint    STRING NOT NULL         COMMENT 'Agent endpoint the invocation was matched to.',
    endpoint_id       STRING NOT NULL         COMMENT 'Gateway endpoint id (or name, when the bill and usage give no id).',
    endpoint_name     STRING NOT NULL         COMMENT 'Gateway endpoint name.',
    destination_model STRING NOT NULL         COMMENT 'Model the gateway routed the call to.',
    match_method      STRING NOT NULL         COMMENT 'attribution.match_method, or no_usage for billed hours without gateway usage.',
    weight            DOUBLE NOT NULL         COMMENT 'attribution.weight: a split invocation counts once across its users; 0 on no_usage rows.',
    list_cost         DECIMAL(38, 6) NOT NULL COMMENT 'List-price cost (tokens × price list), rounded to the micro-unit.',
    allocated_cost    DECIMAL(38, 6) NOT NULL COMMENT 'Share of the bill, exact to the micro-unit: the period''s rows sum to the bill.',
    currency          STRING NOT NULL         COMMENT 'Currency of the bill (USD without billing records).'
)
USING DELTA
CLUSTER BY (event_date, end_user)
COMMENT 'The bill allocated per invocation and end user by obolus report chargeback --persist (or batch.persist_allocation), versioned by bill snapshot; allocated_cost sums to the bill.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
