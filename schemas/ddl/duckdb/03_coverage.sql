-- coverage: how much of each day's gateway traffic per endpoint each match
-- method accounts for. Derived from attribution; RefreshCoverage recomputes
-- whole days.
CREATE TABLE IF NOT EXISTS coverage (
    event_date           DATE    NOT NULL,
    endpoint_name        VARCHAR NOT NULL,
    match_method         VARCHAR NOT NULL,
    invocations          BIGINT  NOT NULL,
    rows                 BIGINT  NOT NULL,
    weighted_invocations DOUBLE  NOT NULL,
    input_tokens         BIGINT  NOT NULL,
    output_tokens        BIGINT  NOT NULL,
    total_tokens         BIGINT  NOT NULL,
    cost_usd             DOUBLE  NOT NULL,
    share_of_invocations DOUBLE  NOT NULL,
    PRIMARY KEY (event_date, endpoint_name, match_method)
);
COMMENT ON TABLE coverage IS 'Per day, gateway endpoint and match method: invocations, tokens and cost, derived from attribution. Key (event_date, endpoint_name, match_method).';
COMMENT ON COLUMN coverage.event_date IS 'UTC date of the invocations (attribution.event_date).';
COMMENT ON COLUMN coverage.endpoint_name IS 'Gateway endpoint name (attribution.endpoint_name).';
COMMENT ON COLUMN coverage.match_method IS 'Match method (attribution.match_method); unattributed counts what no rule could assign.';
COMMENT ON COLUMN coverage.invocations IS 'Distinct invocation_id with a row of this method: a split invocation counts once.';
COMMENT ON COLUMN coverage.rows IS 'Attribution rows: a split invocation counts once per end user.';
COMMENT ON COLUMN coverage.weighted_invocations IS 'Sum of weight, rounded to 6 decimals: invocations counted so split rows add up to one.';
COMMENT ON COLUMN coverage.input_tokens IS 'Sum of input_tokens.';
COMMENT ON COLUMN coverage.output_tokens IS 'Sum of output_tokens.';
COMMENT ON COLUMN coverage.total_tokens IS 'Sum of total_tokens.';
COMMENT ON COLUMN coverage.cost_usd IS 'Sum of cost_usd, US dollars.';
COMMENT ON COLUMN coverage.share_of_invocations IS 'weighted_invocations divided by the weighted invocations of all methods on the same event_date and endpoint_name; the methods of one day and endpoint sum to 1 (0 when that total is 0).';
