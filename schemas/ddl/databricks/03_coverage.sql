-- coverage: how much of each day of gateway traffic per endpoint each match
-- method accounts for. Derived from attribution; a refresh recomputes whole
-- days with one MERGE. Key (event_date, endpoint_name, match_method).
-- Clustered by event_date: it is read and rewritten by date range.
CREATE TABLE IF NOT EXISTS coverage (
    event_date           DATE NOT NULL   COMMENT 'UTC date of the invocations (attribution.event_date).',
    endpoint_name        STRING NOT NULL COMMENT 'Gateway endpoint name (attribution.endpoint_name).',
    match_method         STRING NOT NULL COMMENT 'Match method (attribution.match_method); unattributed counts what no rule could assign.',
    invocations          BIGINT NOT NULL COMMENT 'Distinct invocation_id with a row of this method: a split invocation counts once.',
    rows                 BIGINT NOT NULL COMMENT 'Attribution rows: a split invocation counts once per end user.',
    weighted_invocations DOUBLE NOT NULL COMMENT 'Sum of weight, rounded to 6 decimals: invocations counted so split rows add up to one.',
    input_tokens         BIGINT NOT NULL COMMENT 'Sum of input_tokens.',
    output_tokens        BIGINT NOT NULL COMMENT 'Sum of output_tokens.',
    total_tokens         BIGINT NOT NULL COMMENT 'Sum of total_tokens.',
    cost_usd             DOUBLE NOT NULL COMMENT 'Sum of cost_usd, US dollars.',
    share_of_invocations DOUBLE NOT NULL COMMENT 'weighted_invocations divided by the weighted invocations of all methods on the same event_date and endpoint_name; the methods of one day and endpoint sum to 1 (0 when that total is 0).'
)
USING DELTA
CLUSTER BY (event_date)
COMMENT 'Per day, gateway endpoint and match method: invocations, tokens and cost, derived from attribution. Key (event_date, endpoint_name, match_method).'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
