-- v_monthly_agent: spend per calendar month (UTC) and agent endpoint.
CREATE OR REPLACE VIEW v_monthly_agent AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    agent_endpoint,
    count(DISTINCT end_user)                                           AS users,
    round(sum(weight), 6)                                              AS invocations,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence,
    sum(input_tokens)::BIGINT                                          AS input_tokens,
    sum(output_tokens)::BIGINT                                         AS output_tokens,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd
FROM attribution
GROUP BY ALL;
COMMENT ON VIEW v_monthly_agent IS 'Per UTC calendar month and agent endpoint: users, invocations (sum of weight), match confidence, tokens and list-price cost. Unattributed calls have an empty agent_endpoint.';
COMMENT ON COLUMN v_monthly_agent.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_monthly_agent.agent_endpoint IS 'Model Serving endpoint of the agent; empty for unattributed calls.';
COMMENT ON COLUMN v_monthly_agent.users IS 'Distinct end users.';
COMMENT ON COLUMN v_monthly_agent.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_monthly_agent.mean_confidence IS 'Mean match_confidence weighted by weight, 0..1.';
COMMENT ON COLUMN v_monthly_agent.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_monthly_agent.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_monthly_agent.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_monthly_agent.cost_usd IS 'List-price cost from the price list, US dollars.';
