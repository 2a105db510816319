-- v_monthly_model: spend per calendar month (UTC), gateway endpoint and model.
CREATE OR REPLACE VIEW v_monthly_model AS
SELECT
    CAST(date_trunc('month', event_date) AS DATE)                      AS month,
    endpoint_name,
    destination_model,
    count(DISTINCT end_user)                                           AS users,
    round(sum(weight), 6)                                              AS invocations,
    coalesce(round(sum(weight) FILTER (WHERE match_method <> 'unattributed'), 6), 0) AS attributed_invocations,
    sum(input_tokens)::BIGINT                                          AS input_tokens,
    sum(output_tokens)::BIGINT                                         AS output_tokens,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd
FROM attribution
GROUP BY ALL;
COMMENT ON VIEW v_monthly_model IS 'Per UTC calendar month, gateway endpoint and destination model: users, invocations (sum of weight), how many were attributed, tokens and list-price cost.';
COMMENT ON COLUMN v_monthly_model.month IS 'First day of the UTC calendar month.';
COMMENT ON COLUMN v_monthly_model.endpoint_name IS 'Gateway endpoint name.';
COMMENT ON COLUMN v_monthly_model.destination_model IS 'Model the gateway routed to.';
COMMENT ON COLUMN v_monthly_model.users IS 'Distinct end users (service principals for unattributed calls).';
COMMENT ON COLUMN v_monthly_model.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_monthly_model.attributed_invocations IS 'Invocations assigned to an end user.';
COMMENT ON COLUMN v_monthly_model.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_monthly_model.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_monthly_model.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_monthly_model.cost_usd IS 'List-price cost from the price list, US dollars.';
