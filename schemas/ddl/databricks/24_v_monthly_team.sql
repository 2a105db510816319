-- v_monthly_team: spend per month, team and cost center.
CREATE OR REPLACE VIEW v_monthly_team
COMMENT 'Per UTC calendar month, team and cost center: end users, invocations, tokens, list-price cost, and the shares of cost matched by identifier or left unattributed.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    team,
    cost_center,
    count(DISTINCT CASE WHEN match_method <> 'unattributed' THEN end_user END) AS users,
    round(sum(weight), 6)                                                AS invocations,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd,
    coalesce(sum(CASE WHEN match_method IN ('tag_user', 'trace_id', 'request_id') THEN cost_usd END) / nullif(sum(cost_usd), 0), 0) AS id_matched_cost_share,
    coalesce(sum(CASE WHEN match_method = 'unattributed' THEN cost_usd END) / nullif(sum(cost_usd), 0), 0) AS unattributed_cost_share
FROM attribution
GROUP BY ALL;
