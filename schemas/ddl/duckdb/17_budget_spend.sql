-- budget_spend: the streaming alerts' ledger (sink/kafka, Alerter). One row
-- per invocation × budget subject (end user, team, cost center): the
-- highest list-price spend any answer of the invocation, restatements
-- included, gave that subject, in micro-USD. Taking the highest over
-- answers makes a subject's spend only grow as answers load, so the set of
-- budget levels it reaches is the same whatever order and batches the
-- answers load in (docs/streaming.md, Budget alerts).
CREATE TABLE IF NOT EXISTS budget_spend (
    invocation_id VARCHAR   NOT NULL,
    scope         VARCHAR   NOT NULL,
    name          VARCHAR   NOT NULL,
    event_time    TIMESTAMP NOT NULL,
    cost_micros   BIGINT    NOT NULL,
    PRIMARY KEY (invocation_id, scope, name)
);
COMMENT ON TABLE budget_spend IS 'Streaming budget alerts: per invocation and subject, the highest list-price spend any of its answers gave the subject, in micro-USD.';
COMMENT ON COLUMN budget_spend.invocation_id IS 'Gateway invocation (attribution.invocation_id).';
COMMENT ON COLUMN budget_spend.scope IS 'user, team or cost_center.';
COMMENT ON COLUMN budget_spend.name IS 'The end user, team or cost center, as attribution holds it.';
COMMENT ON COLUMN budget_spend.event_time IS 'The invocation''s event time, UTC: it decides the day and month the spend counts in.';
COMMENT ON COLUMN budget_spend.cost_micros IS 'Highest cost_usd any answer gave the subject for the invocation, in micro-USD (rounded).';
