-- v_daily_user: spend per day and end user. Invocations are sum(weight), so a
-- split invocation counts once in any total across users.
CREATE OR REPLACE VIEW v_daily_user (
    event_date    COMMENT 'UTC date.',
    end_user      COMMENT 'End user, or the service principal for unattributed calls.',
    team          COMMENT 'Team from the org directory (unassigned when unknown).',
    cost_center   COMMENT 'Cost center from the org directory.',
    invocations   COMMENT 'Gateway invocations, sum of weight: split invocations count fractionally.',
    input_tokens  COMMENT 'Input tokens.',
    output_tokens COMMENT 'Output tokens.',
    total_tokens  COMMENT 'Total tokens.',
    cost_usd      COMMENT 'Estimated cost, US dollars.'
)
COMMENT 'Per UTC day and end user: invocations (sum of weight), tokens and cost. Unattributed spend appears under the service principal that made the calls.'
AS
SELECT
    event_date,
    end_user,
    team,
    cost_center,
    round(sum(weight), 6)       AS invocations,
    CAST(sum(input_tokens) AS BIGINT)   AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)  AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)   AS total_tokens,
    sum(cost_usd)               AS cost_usd
FROM attribution
GROUP BY event_date, end_user, team, cost_center;
