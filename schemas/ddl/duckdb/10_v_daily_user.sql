-- v_daily_user: spend per day and end user. Invocations are sum(weight), so a
-- split invocation counts once in any total across users.
CREATE OR REPLACE VIEW v_daily_user AS
SELECT
    event_date,
    end_user,
    team,
    cost_center,
    round(sum(weight), 6)       AS invocations,
    sum(input_tokens)::BIGINT   AS input_tokens,
    sum(output_tokens)::BIGINT  AS output_tokens,
    sum(total_tokens)::BIGINT   AS total_tokens,
    sum(cost_usd)               AS cost_usd
FROM attribution
GROUP BY event_date, end_user, team, cost_center;
COMMENT ON VIEW v_daily_user IS 'Per UTC day and end user: invocations (sum of weight), tokens and cost. Unattributed spend appears under the service principal that made the calls.';
COMMENT ON COLUMN v_daily_user.event_date IS 'UTC date.';
COMMENT ON COLUMN v_daily_user.end_user IS 'End user, or the service principal for unattributed calls.';
COMMENT ON COLUMN v_daily_user.team IS 'Team from the org directory (unassigned when unknown).';
COMMENT ON COLUMN v_daily_user.cost_center IS 'Cost center from the org directory.';
COMMENT ON COLUMN v_daily_user.invocations IS 'Gateway invocations, sum of weight: split invocations count fractionally.';
COMMENT ON COLUMN v_daily_user.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_daily_user.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_daily_user.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_daily_user.cost_usd IS 'Estimated cost, US dollars.';
