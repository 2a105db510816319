-- v_monthly_user: spend per month and end user (same columns as the embedded
-- store's view of this name, so the dashboard runs on either store).
CREATE OR REPLACE VIEW v_monthly_user
COMMENT 'Per UTC calendar month and end user: invocations (sum of weight), agents used, tokens, list-price cost and mean match confidence. Unattributed spend appears under the service principal (attributed = false).'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    end_user,
    team,
    cost_center,
    bool_or(match_method <> 'unattributed')                              AS attributed,
    round(sum(weight), 6)                                                AS invocations,
    count(DISTINCT agent_endpoint)                                       AS agents,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
FROM attribution
GROUP BY ALL;
