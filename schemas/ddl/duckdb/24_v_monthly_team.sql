-- v_monthly_team: spend per calendar month (UTC), team and cost center, at
-- list price, with the share of each team's cost that rests on identifiers.
CREATE OR REPLACE VIEW v_monthly_team AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    team,
    cost_center,
    count(DISTINCT end_user) FILTER (WHERE match_method <> 'unattributed') AS users,
    round(sum(weight), 6)                                              AS invocations,
    sum(input_tokens)::BIGINT                                          AS input_tokens,
    sum(output_tokens)::BIGINT                                         AS output_tokens,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd,
    coalesce(sum(cost_usd) FILTER (WHERE match_method IN ('tag_user', 'trace_id', 'request_id')) / nullif(sum(cost_usd), 0), 0) AS id_matched_cost_share,
    coalesce(sum(cost_usd) FILTER (WHERE match_method = 'unattributed') / nullif(sum(cost_usd), 0), 0) AS unattributed_cost_share
FROM attribution
GROUP BY ALL;
COMMENT ON VIEW v_monthly_team IS 'Per UTC calendar month, team and cost center: end users, invocations (sum of weight), tokens, list-price cost, and how much of that cost was matched by identifier or left unattributed.';
COMMENT ON COLUMN v_monthly_team.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_monthly_team.team IS 'Team from the org directory; unassigned holds unknown users and unattributed calls.';
COMMENT ON COLUMN v_monthly_team.cost_center IS 'Cost center from the org directory.';
COMMENT ON COLUMN v_monthly_team.users IS 'Distinct attributed end users.';
COMMENT ON COLUMN v_monthly_team.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_monthly_team.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_monthly_team.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_monthly_team.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_monthly_team.cost_usd IS 'List-price cost from the price list, US dollars.';
COMMENT ON COLUMN v_monthly_team.id_matched_cost_share IS 'Share of cost_usd matched by an identifier (tag_user, trace_id, request_id), 0..1.';
COMMENT ON COLUMN v_monthly_team.unattributed_cost_share IS 'Share of cost_usd left unattributed, 0..1.';
