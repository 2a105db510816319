-- v_monthly_model: spend per month, gateway endpoint and destination model.
CREATE OR REPLACE VIEW v_monthly_model
COMMENT 'Per UTC calendar month, gateway endpoint and destination model: users, invocations, attributed invocations, tokens and list-price cost.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    endpoint_name,
    destination_model,
    count(DISTINCT end_user)                                             AS users,
    round(sum(weight), 6)                                                AS invocations,
    coalesce(round(sum(CASE WHEN match_method <> 'unattributed' THEN weight END), 6), 0) AS attributed_invocations,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd
FROM attribution
GROUP BY ALL;
