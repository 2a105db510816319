-- v_daily_model: spend per day and destination model.
CREATE OR REPLACE VIEW v_daily_model AS
SELECT
    event_date,
    destination_model,
    count(DISTINCT end_user)                                           AS users,
    round(sum(weight), 6)                                              AS invocations,
    round(sum(weight) FILTER (WHERE match_method <> 'unattributed'), 6) AS attributed_invocations,
    sum(input_tokens)::BIGINT                                          AS input_tokens,
    sum(output_tokens)::BIGINT                                         AS output_tokens,
    sum(total_tokens)::BIGINT                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd
FROM attribution
GROUP BY event_date, destination_model;
COMMENT ON VIEW v_daily_model IS 'Per UTC day and destination model: users, invocations (sum of weight), how many were attributed, tokens and cost.';
COMMENT ON COLUMN v_daily_model.event_date IS 'UTC date.';
COMMENT ON COLUMN v_daily_model.destination_model IS 'Model the gateway routed to.';
COMMENT ON COLUMN v_daily_model.users IS 'Distinct end users (service principals for unattributed calls).';
COMMENT ON COLUMN v_daily_model.invocations IS 'Gateway invocations, sum of weight.';
COMMENT ON COLUMN v_daily_model.attributed_invocations IS 'Invocations assigned to an end user (match_method other than unattributed); NULL when none.';
COMMENT ON COLUMN v_daily_model.input_tokens IS 'Input tokens.';
COMMENT ON COLUMN v_daily_model.output_tokens IS 'Output tokens.';
COMMENT ON COLUMN v_daily_model.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN v_daily_model.cost_usd IS 'Estimated cost, US dollars.';
