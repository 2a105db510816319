-- v_coverage_daily: what share of the invocations of each day, tokens and cost each
-- match method accounts for. Reads attribution directly, so it never lags a
-- RefreshCoverage.
CREATE OR REPLACE VIEW v_coverage_daily (
    event_date           COMMENT 'UTC date.',
    match_method         COMMENT 'Match method; unattributed is what no rule could assign.',
    attributed           COMMENT 'True for every method but unattributed.',
    invocations          COMMENT 'Gateway invocations, sum of weight.',
    share_of_invocations COMMENT 'invocations over all invocations of the day, 0..1.',
    total_tokens         COMMENT 'Total tokens.',
    share_of_tokens      COMMENT 'total_tokens over all total tokens of the day, 0..1.',
    cost_usd             COMMENT 'Estimated cost, US dollars.',
    share_of_cost        COMMENT 'cost_usd over all cost of the day, 0..1.'
)
COMMENT 'Per UTC day and match method: invocations (sum of weight), tokens and cost, each with its share of the day. The attributed share of a day is the sum of share_of_invocations over attributed rows.'
AS
SELECT
    event_date,
    match_method,
    match_method <> 'unattributed'                                                          AS attributed,
    round(sum(weight), 6)                                                                   AS invocations,
    coalesce(sum(weight) / nullif(sum(sum(weight)) OVER (PARTITION BY event_date), 0), 0)  AS share_of_invocations,
    CAST(sum(total_tokens) AS BIGINT)                                                               AS total_tokens,
    CAST(coalesce(sum(total_tokens) / nullif(sum(sum(total_tokens)) OVER (PARTITION BY event_date), 0), 0) AS DOUBLE) AS share_of_tokens,
    sum(cost_usd)                                                                           AS cost_usd,
    coalesce(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (PARTITION BY event_date), 0), 0) AS share_of_cost
FROM attribution
GROUP BY event_date, match_method;
