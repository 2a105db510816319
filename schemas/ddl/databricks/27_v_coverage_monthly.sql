-- v_coverage_monthly: per month, how invocations and cost were matched.
CREATE OR REPLACE VIEW v_coverage_monthly
COMMENT 'Per UTC calendar month and match method: invocations, tokens and list-price cost with their shares of the month, and the basis of the match (id, time_window, unattributed).'
AS SELECT
    month,
    match_method,
    basis,
    invocations,
    coalesce(invocations / nullif(sum(invocations) OVER (PARTITION BY month), 0), 0) AS share_of_invocations,
    total_tokens,
    cost_usd,
    coalesce(cost_usd / nullif(sum(cost_usd) OVER (PARTITION BY month), 0), 0)       AS share_of_cost,
    mean_confidence
FROM (
    SELECT
        CAST(date_trunc('MONTH', event_date) AS DATE)                    AS month,
        match_method,
        CASE WHEN match_method IN ('tag_user', 'trace_id', 'request_id') THEN 'id'
             WHEN match_method = 'unattributed' THEN 'unattributed'
             ELSE 'time_window' END                                      AS basis,
        round(sum(weight), 6)                                            AS invocations,
        CAST(sum(total_tokens) AS BIGINT)                                AS total_tokens,
        sum(cost_usd)                                                    AS cost_usd,
        coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
    FROM attribution
    GROUP BY ALL
);
