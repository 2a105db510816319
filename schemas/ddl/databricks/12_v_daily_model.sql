-- v_daily_model: spend per day and destination model.
CREATE OR REPLACE VIEW v_daily_model (
    event_date             COMMENT 'UTC date.',
    destination_model      COMMENT 'Model the gateway routed to.',
    users                  COMMENT 'Distinct end users (service principals for unattributed calls).',
    invocations            COMMENT 'Gateway invocations, sum of weight.',
    attributed_invocations COMMENT 'Invocations assigned to an end user (match_method other than unattributed); NULL when none.',
    input_tokens           COMMENT 'Input tokens.',
    output_tokens          COMMENT 'Output tokens.',
    total_tokens           COMMENT 'Total tokens.',
    cost_usd               COMMENT 'Estimated cost, US dollars.'
)
COMMENT 'Per UTC day and destination model: users, invocations (sum of weight), how many were attributed, tokens and cost.'
AS
SELECT
    event_date,
    destination_model,
    count(DISTINCT end_user)                                           AS users,
    round(sum(weight), 6)                                              AS invocations,
    round(sum(weight) FILTER (WHERE match_method <> 'unattributed'), 6) AS attributed_invocations,
    CAST(sum(input_tokens) AS BIGINT)                                          AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                         AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                          AS total_tokens,
    sum(cost_usd)                                                      AS cost_usd
FROM attribution
GROUP BY event_date, destination_model;
