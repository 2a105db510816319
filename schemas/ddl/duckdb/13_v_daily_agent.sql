-- v_daily_agent: spend per day and agent endpoint.
CREATE OR REPLACE VIEW v_daily_agent AS
SELECT
    event_date,
    agent_endpoint,
    count(DISTINCT end_user)                                    AS users,
    round(sum(weight), 6)                                       AS invocations,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence,
    sum(input_tokens)::BIGINT                                   AS input_tokens,
    sum(output_tokens)::BIGINT                                  AS output_tokens,
    sum(total_tokens)::BIGINT                                   AS total_tokens,
    sum(cost_usd)                                               AS cost_usd
FROM attribution
GROUP BY event_date, agent_endpoint;
COMMENT ON VIEW v_daily_agent IS 'Per UTC day and agent endpoint: users, invocations (sum of weight), match confidence, tokens and cost. Unattributed calls have an empty agent_endpoint.';
COMMENT ON COLUMN v_daily_agent.event_date IS 'UTC date.';
COMMENT ON COLUMN v_daily_agent.agent_endpoint IS 'Model Serving endpoint of the agent; empty for unattributed calls.';
COMMENT ON COLUMN v_daily_agent.users IS 'Distinct end users.';
COMMENT ON COLUMN v_daily_agent.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_daily_agent.mean_confidence IS 'Mean match_confidence weighted by weight, 0..1.';
COMMENT ON COLUMN v_daily_agent.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_daily_agent.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_daily_agent.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_daily_agent.cost_usd IS 'Estimated cost, US dollars.';
