-- v_daily_team: spend per day and team.
CREATE OR REPLACE VIEW v_daily_team (
    event_date    COMMENT 'UTC date.',
    team          COMMENT 'Team from the org directory; unassigned holds unknown users and unattributed calls.',
    cost_center   COMMENT 'Cost center from the org directory.',
    users         COMMENT 'Distinct end users (service principals for unattributed calls).',
    invocations   COMMENT 'Gateway invocations, sum of weight.',
    input_tokens  COMMENT 'Input tokens.',
    output_tokens COMMENT 'Output tokens.',
    total_tokens  COMMENT 'Total tokens.',
    cost_usd      COMMENT 'Estimated cost, US dollars.'
)
COMMENT 'Per UTC day, team and cost center: users, invocations (sum of weight), tokens and cost.'
AS
SELECT
    event_date,
    team,
    cost_center,
    count(DISTINCT end_user)    AS users,
    round(sum(weight), 6)       AS invocations,
    CAST(sum(input_tokens) AS BIGINT)   AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)  AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)   AS total_tokens,
    sum(cost_usd)               AS cost_usd
FROM attribution
GROUP BY event_date, team, cost_center;
