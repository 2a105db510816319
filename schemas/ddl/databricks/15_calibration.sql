-- calibration: per batch run, how often the time-window rule picked the
-- right end user for id-linked calls whose ids were masked, per service
-- principal and bucket of what the rule saw, and the confidence real
-- time-window matches got from it. Key (run_id, service_principal, method,
-- candidates, rule_confidence). Small: no clustering.
CREATE TABLE IF NOT EXISTS calibration (
    run_id            STRING NOT NULL COMMENT 'The run (runs.run_id) whose id-linked calls were counted; attribution rows of that run carry it.',
    service_principal STRING NOT NULL COMMENT 'The agent''s service principal; empty for the pooled bucket of all service principals.',
    method            STRING NOT NULL COMMENT 'time_window, time_window_nearest or time_window_likely: what the rule answered; empty on a service principal''s presence row.',
    candidates        INT NOT NULL    COMMENT 'Candidates the rule saw (attribution.candidates of such a match).',
    rule_confidence   DOUBLE NOT NULL COMMENT 'The rule''s own confidence for the bucket (crowding and skew; see the README); the prior.',
    calls             BIGINT NOT NULL COMMENT 'Id-linked calls in the bucket; on a presence row, id-tagged calls.',
    correct           BIGINT NOT NULL COMMENT 'Of those, the ones the rule gave the right end user; on a presence row, the ones whose request was found.',
    present           DOUBLE NOT NULL COMMENT 'Share of the service principal''s id-tagged calls whose request was found, smoothed; 1 on pooled rows.',
    confidence        DOUBLE NOT NULL COMMENT 'The match_confidence real time-window matches in the bucket got.'
)
USING DELTA
COMMENT 'One calibration table per batch run: the measured precision behind match_confidence of time-window matches.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
