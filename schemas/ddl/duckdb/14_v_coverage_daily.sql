-- v_coverage_daily: what share of each day's invocations, tokens and cost each
-- match method accounts for. Reads attribution directly, so it never lags a
-- RefreshCoverage.
CREATE OR REPLACE VIEW v_coverage_daily AS
SELECT
    event_date,
    match_method,
    match_method <> 'unattributed'                                                          AS attributed,
    round(sum(weight), 6)                                                                   AS invocations,
    coalesce(sum(weight) / nullif(sum(sum(weight)) OVER (PARTITION BY event_date), 0), 0)  AS share_of_invocations,
    sum(total_tokens)::BIGINT                                                               AS total_tokens,
    coalesce(sum(total_tokens) / nullif(sum(sum(total_tokens)) OVER (PARTITION BY event_date), 0), 0)::DOUBLE AS share_of_tokens,
    sum(cost_usd)                                                                           AS cost_usd,
    coalesce(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (PARTITION BY event_date), 0), 0) AS share_of_cost
FROM attribution
GROUP BY event_date, match_method;
COMMENT ON VIEW v_coverage_daily IS 'Per UTC day and match method: invocations (sum of weight), tokens and cost, each with its share of the day. The attributed share of a day is the sum of share_of_invocations over attributed rows.';
COMMENT ON COLUMN v_coverage_daily.event_date IS 'UTC date.';
COMMENT ON COLUMN v_coverage_daily.match_method IS 'Match method; unattributed is what no rule could assign.';
COMMENT ON COLUMN v_coverage_daily.attributed IS 'True for every method but unattributed.';
COMMENT ON COLUMN v_coverage_daily.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_coverage_daily.share_of_invocations IS 'invocations over all of the day''s invocations, 0..1.';
COMMENT ON COLUMN v_coverage_daily.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_coverage_daily.share_of_tokens IS 'total_tokens over all of the day''s total tokens, 0..1.';
COMMENT ON COLUMN v_coverage_daily.cost_usd IS 'Estimated cost, US dollars.';
COMMENT ON COLUMN v_coverage_daily.share_of_cost IS 'cost_usd over all of the day''s cost, 0..1.';
