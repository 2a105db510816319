-- v_daily_team: spend per day and team.
CREATE OR REPLACE VIEW v_daily_team AS
SELECT
    event_date,
    team,
    cost_center,
    count(DISTINCT end_user)    AS users,
    round(sum(weight), 6)       AS invocations,
    sum(input_tokens)::BIGINT   AS input_tokens,
    sum(output_tokens)::BIGINT  AS output_tokens,
    sum(total_tokens)::BIGINT   AS total_tokens,
    sum(cost_usd)               AS cost_usd
FROM attribution
GROUP BY event_date, team, cost_center;
COMMENT ON VIEW v_daily_team IS 'Per UTC day, team and cost center: users, invocations (sum of weight), tokens and cost.';
COMMENT ON COLUMN v_daily_team.event_date IS 'UTC date.';
COMMENT ON COLUMN v_daily_team.team IS 'Team from the org directory; unassigned holds unknown users and unattributed calls.';
COMMENT ON COLUMN v_daily_team.cost_center IS 'Cost center from the org directory.';
COMMENT ON COLUMN v_daily_team.users IS 'Distinct end users (service principals for unattributed calls).';
COMMENT ON COLUMN v_daily_team.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_daily_team.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_daily_team.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_daily_team.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_daily_team.cost_usd IS 'Estimated cost, US dollars.';
