-- v_monthly_agent: spend per month and agent endpoint.
CREATE OR REPLACE VIEW v_monthly_agent
COMMENT 'Per UTC calendar month and agent endpoint: users, invocations, match confidence, tokens and list-price cost. Unattributed calls have an empty agent_endpoint.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    agent_endpoint,
    count(DISTINCT end_user)                                             AS users,
    round(sum(weight), 6)                                                AS invocations,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd
FROM attribution
GROUP BY ALL;
