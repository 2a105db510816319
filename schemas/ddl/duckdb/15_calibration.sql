-- calibration: per batch run, how often the time-window rule picked the
-- right end user for id-linked calls whose ids were masked, per service
-- principal and bucket of what the rule saw, and the confidence real
-- time-window matches got from it.
CREATE TABLE IF NOT EXISTS calibration (
    run_id            VARCHAR NOT NULL,
    service_principal VARCHAR NOT NULL,
    method            VARCHAR NOT NULL,
    candidates        INTEGER NOT NULL,
    rule_confidence   DOUBLE  NOT NULL,
    calls             BIGINT  NOT NULL,
    correct           BIGINT  NOT NULL,
    present           DOUBLE  NOT NULL,
    confidence        DOUBLE  NOT NULL,
    PRIMARY KEY (run_id, service_principal, method, candidates, rule_confidence)
);
COMMENT ON TABLE calibration IS 'One calibration table per batch run: the measured precision behind match_confidence of time-window matches.';
COMMENT ON COLUMN calibration.run_id IS 'The run (runs.run_id) whose id-linked calls were counted; attribution rows of that run carry it.';
COMMENT ON COLUMN calibration.service_principal IS 'The agent''s service principal; empty for the pooled bucket of all service principals.';
COMMENT ON COLUMN calibration.method IS 'time_window, time_window_nearest or time_window_likely: what the rule answered; empty on a service principal''s presence row.';
COMMENT ON COLUMN calibration.candidates IS 'Candidates the rule saw (attribution.candidates of such a match).';
COMMENT ON COLUMN calibration.rule_confidence IS 'The rule''s own confidence for the bucket (crowding and skew; see the README); the prior.';
COMMENT ON COLUMN calibration.calls IS 'Id-linked calls in the bucket; on a presence row, id-tagged calls.';
COMMENT ON COLUMN calibration.correct IS 'Of those, the ones the rule gave the right end user; on a presence row, the ones whose request was found.';
COMMENT ON COLUMN calibration.present IS 'Share of the service principal''s id-tagged calls whose request was found, smoothed; 1 on pooled rows.';
COMMENT ON COLUMN calibration.confidence IS 'The match_confidence real time-window matches in the bucket got.';
