-- v_monthly_allocated: the bill allocated per calendar month, team and end
-- user, from cost_allocation (same columns as the embedded store's view of
-- this name, so the dashboard runs on either store). Each persist replaces
-- its period's rows, so no filter on snapshot_id is needed.
CREATE OR REPLACE VIEW v_monthly_allocated
COMMENT 'Per UTC calendar month, team and end user: the bill allocated by obolus (cost_allocation), exact to the micro-unit. Unattributed calls (under their service principal) and billed hours without usage (empty end_user) form team (unattributed).'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    CASE WHEN match_method IN ('unattributed', 'no_usage') THEN '(unattributed)' ELSE team END AS team,
    end_user,
    cost_center,
    match_method NOT IN ('unattributed', 'no_usage')                     AS attributed,
    currency,
    round(sum(weight), 6)                                                AS invocations,
    sum(list_cost)                                                       AS list_cost,
    sum(allocated_cost)                                                  AS allocated_cost,
    max(snapshot_id)                                                     AS snapshot_id,
    max(computed_at)                                                     AS computed_at
FROM cost_allocation
GROUP BY ALL;
