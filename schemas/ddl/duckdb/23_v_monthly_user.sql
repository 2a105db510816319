-- v_monthly_user: spend per calendar month (UTC) and end user, at list price.
-- Invocations are sum(weight), so a split invocation counts once in any total
-- across users. Bill-reconciled (allocated) cost comes from obolus report
-- chargeback (CSV, Parquet, FOCUS), which allocates the bill per invocation.
CREATE OR REPLACE VIEW v_monthly_user AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    end_user,
    team,
    cost_center,
    bool_or(match_method <> 'unattributed')                            AS attributed,
    round(sum(weight), 6)                                              AS invocations,
    count(DISTINCT agent_endpoint)                                     AS agents,
    sum(input_tokens)::BIGINT                                          AS input_tokens,
    sum(output_tokens)::BIGINT                                         AS output_tokens,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
FROM attribution
GROUP BY ALL;
COMMENT ON VIEW v_monthly_user IS 'Per UTC calendar month and end user: invocations (sum of weight), agents used, tokens, list-price cost and mean match confidence. Unattributed spend appears under the service principal that made the calls (attributed = false).';
COMMENT ON COLUMN v_monthly_user.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_monthly_user.end_user IS 'End user, or the service principal for unattributed calls.';
COMMENT ON COLUMN v_monthly_user.team IS 'Team from the org directory (unassigned when unknown).';
COMMENT ON COLUMN v_monthly_user.cost_center IS 'Cost center from the org directory.';
COMMENT ON COLUMN v_monthly_user.attributed IS 'False when every row is unattributed: end_user is then a service principal.';
COMMENT ON COLUMN v_monthly_user.invocations IS 'Gateway invocations, sum of weight: split invocations count fractionally.';
COMMENT ON COLUMN v_monthly_user.agents IS 'Distinct agent endpoints the user''s calls came through.';
COMMENT ON COLUMN v_monthly_user.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_monthly_user.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_monthly_user.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_monthly_user.cost_usd IS 'List-price cost from the price list, US dollars.';
COMMENT ON COLUMN v_monthly_user.mean_confidence IS 'Mean match_confidence weighted by weight, 0..1.';
