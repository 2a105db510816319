-- v_daily_agent: spend per day and agent endpoint.
CREATE OR REPLACE VIEW v_daily_agent (
    event_date      COMMENT 'UTC date.',
    agent_endpoint  COMMENT 'Model Serving endpoint of the agent; empty for unattributed calls.',
    users           COMMENT 'Distinct end users.',
    invocations     COMMENT 'Gateway invocations, sum of weight.',
    mean_confidence COMMENT 'Mean match_confidence weighted by weight, 0..1.',
    input_tokens    COMMENT 'Input tokens.',
    output_tokens   COMMENT 'Output tokens.',
    total_tokens    COMMENT 'Total tokens.',
    cost_usd        COMMENT 'Estimated cost, US dollars.'
)
COMMENT 'Per UTC day and agent endpoint: users, invocations (sum of weight), match confidence, tokens and cost. Unattributed calls have an empty agent_endpoint.'
AS
SELECT
    event_date,
    agent_endpoint,
    count(DISTINCT end_user)                                    AS users,
    round(sum(weight), 6)                                       AS invocations,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence,
    CAST(sum(input_tokens) AS BIGINT)                                   AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                  AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                   AS total_tokens,
    sum(cost_usd)                                               AS cost_usd
FROM attribution
GROUP BY event_date, agent_endpoint;
