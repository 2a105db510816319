-- cost_allocation: the bill allocated to invocation × end user, as obolus
-- report chargeback --persist computed it (sink/report, Persist). One row per
-- attribution row of the allocated period, plus one per billed hour ×
-- endpoint × model without usage (match_method no_usage, invocation_id and
-- end_user empty), so allocated_cost sums to the bill.
-- Versioned by bill snapshot: snapshot_id digests the billing records the
-- allocation used (record ids, types, quantities, prices). Persisting a
-- period replaces all of its hours' rows in one transaction; a restated bill
-- gives a new snapshot_id, the same bill keeps the first computed_at, so
-- re-persisting an unchanged bill changes nothing.
-- Logical key (snapshot_id, hour, invocation_id, end_user, endpoint_id,
-- destination_model); no index, as for attribution: rows are replaced by period.
CREATE TABLE IF NOT EXISTS cost_allocation (
    snapshot_id       VARCHAR        NOT NULL,
    computed_at       TIMESTAMP      NOT NULL,
    period_start      TIMESTAMP      NOT NULL,
    period_end        TIMESTAMP      NOT NULL,
    hour              TIMESTAMP      NOT NULL,
    event_date        DATE           NOT NULL,
    invocation_id     VARCHAR        NOT NULL,
    end_user          VARCHAR        NOT NULL,
    team              VARCHAR        NOT NULL,
    cost_center       VARCHAR        NOT NULL,
    agent_endpoint    VARCHAR        NOT NULL,
    endpoint_id       VARCHAR        NOT NULL,
    endpoint_name     VARCHAR        NOT NULL,
    destination_model VARCHAR        NOT NULL,
    match_method      VARCHAR        NOT NULL,
    weight            DOUBLE         NOT NULL,
    list_cost         DECIMAL(38, 6) NOT NULL,
    allocated_cost    DECIMAL(38, 6) NOT NULL,
    currency          VARCHAR        NOT NULL
);
COMMENT ON TABLE cost_allocation IS 'The bill allocated per invocation and end user by obolus report chargeback --persist (or batch.persist_allocation), versioned by bill snapshot; allocated_cost sums to the bill.';
COMMENT ON COLUMN cost_allocation.snapshot_id IS 'Digest of the billing records the allocation used (record ids, record types, quantities, prices); a restated bill gives a new one.';
COMMENT ON COLUMN cost_allocation.computed_at IS 'When this snapshot was first persisted, UTC; re-persisting the same bill keeps it.';
COMMENT ON COLUMN cost_allocation.period_start IS 'Start of the allocated period (inclusive), UTC.';
COMMENT ON COLUMN cost_allocation.period_end IS 'End of the allocated period (exclusive), UTC.';
COMMENT ON COLUMN cost_allocation.hour IS 'The billed hour (UTC) whose cost the row carries a share of.';
COMMENT ON COLUMN cost_allocation.event_date IS 'UTC date of hour.';
COMMENT ON COLUMN cost_allocation.invocation_id IS 'Gateway invocation (attribution.invocation_id); empty on no_usage rows.';
COMMENT ON COLUMN cost_allocation.end_user IS 'End user (attribution.end_user; the service principal when unattributed); empty on no_usage rows.';
COMMENT ON COLUMN cost_allocation.team IS 'Team of the end user.';
COMMENT ON COLUMN cost_allocation.cost_center IS 'Cost center of the end user.';
COMMENT ON COLUMN cost_allocation.agent_endpoint IS 'Agent endpoint the invocation was matched to.';
COMMENT ON COLUMN cost_allocation.endpoint_id IS 'Gateway endpoint id (or name, when the bill and usage give no id).';
COMMENT ON COLUMN cost_allocation.endpoint_name IS 'Gateway endpoint name.';
COMMENT ON COLUMN cost_allocation.destination_model IS 'Model the gateway routed the call to.';
COMMENT ON COLUMN cost_allocation.match_method IS 'attribution.match_method, or no_usage for billed hours without gateway usage.';
COMMENT ON COLUMN cost_allocation.weight IS 'attribution.weight: a split invocation counts once across its users; 0 on no_usage rows.';
COMMENT ON COLUMN cost_allocation.list_cost IS 'List-price cost (tokens × price list), rounded to the micro-unit.';
COMMENT ON COLUMN cost_allocation.allocated_cost IS 'Share of the bill, exact to the micro-unit: the period''s rows sum to the bill.';
COMMENT ON COLUMN cost_allocation.currency IS 'Currency of the bill (USD without billing records).';
