-- v_coverage_monthly: what share of each month's invocations, tokens and cost
-- each match method accounts for, and whether it rests on an identifier or on
-- time-window matching.
CREATE OR REPLACE VIEW v_coverage_monthly AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    match_method,
    CASE WHEN match_method IN ('tag_user', 'trace_id', 'request_id') THEN 'id'
         WHEN match_method = 'unattributed' THEN 'unattributed'
         ELSE 'time_window' END                                        AS basis,
    round(sum(weight), 6)                                              AS invocations,
    coalesce(sum(weight) / nullif(sum(sum(weight)) OVER (PARTITION BY CAST(date_trunc('month', event_date) AS DATE)), 0), 0) AS share_of_invocations,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd,
    coalesce(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (PARTITION BY CAST(date_trunc('month', event_date) AS DATE)), 0), 0) AS share_of_cost,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
FROM attribution
GROUP BY 1, 2, 3;
COMMENT ON VIEW v_coverage_monthly IS 'Per UTC calendar month and match method: invocations (sum of weight), tokens and list-price cost, each with its share of the month, and the basis of the match (id, time_window or unattributed).';
COMMENT ON COLUMN v_coverage_monthly.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_coverage_monthly.match_method IS 'Match method; unattributed is what no rule could assign.';
COMMENT ON COLUMN v_coverage_monthly.basis IS 'id for tag_user, trace_id and request_id; time_window for the time-window methods; unattributed.';
COMMENT ON COLUMN v_coverage_monthly.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_coverage_monthly.share_of_invocations IS 'invocations over all of the month''s invocations, 0..1.';
COMMENT ON COLUMN v_coverage_monthly.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_coverage_monthly.cost_usd IS 'List-price cost, US dollars.';
COMMENT ON COLUMN v_coverage_monthly.share_of_cost IS 'cost_usd over all of the month''s cost, 0..1.';
COMMENT ON COLUMN v_coverage_monthly.mean_confidence IS 'Mean match_confidence weighted by weight, 0..1.';
