-- v_monthly_allocated: the bill allocated per calendar month, team and end
-- user, from cost_allocation (obolus report chargeback --persist, or
-- batch.persist_allocation). Each persist replaces its period's rows, so the
-- table holds one bill snapshot per hour and the view needs no filter on
-- snapshot_id; allocated_cost sums to the bill of the persisted months.
CREATE OR REPLACE VIEW v_monthly_allocated AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    CASE WHEN match_method IN ('unattributed', 'no_usage') THEN '(unattributed)' ELSE team END AS team,
    end_user,
    cost_center,
    match_method NOT IN ('unattributed', 'no_usage')                   AS attributed,
    currency,
    round(sum(weight), 6)                                              AS invocations,
    sum(list_cost)                                                     AS list_cost,
    sum(allocated_cost)                                                AS allocated_cost,
    max(snapshot_id)                                                   AS snapshot_id,
    max(computed_at)                                                   AS computed_at
FROM cost_allocation
GROUP BY ALL;
COMMENT ON VIEW v_monthly_allocated IS 'Per UTC calendar month, team and end user: the bill allocated by obolus (cost_allocation), exact to the micro-unit. Unattributed calls (under their service principal) and billed hours without usage (empty end_user) form team (unattributed).';
COMMENT ON COLUMN v_monthly_allocated.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_monthly_allocated.team IS 'Team of the end user; (unattributed) for the remainder.';
COMMENT ON COLUMN v_monthly_allocated.end_user IS 'End user; the service principal for unattributed calls; empty for billed hours without usage.';
COMMENT ON COLUMN v_monthly_allocated.cost_center IS 'Cost center of the end user.';
COMMENT ON COLUMN v_monthly_allocated.attributed IS 'False for the unattributed remainder.';
COMMENT ON COLUMN v_monthly_allocated.currency IS 'Currency of the bill.';
COMMENT ON COLUMN v_monthly_allocated.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_monthly_allocated.list_cost IS 'List-price cost.';
COMMENT ON COLUMN v_monthly_allocated.allocated_cost IS 'Share of the bill; the month''s rows sum to the bill.';
COMMENT ON COLUMN v_monthly_allocated.snapshot_id IS 'Bill snapshot the allocation used (one per persisted period).';
COMMENT ON COLUMN v_monthly_allocated.computed_at IS 'When that snapshot was first persisted.';
