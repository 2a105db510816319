-- budget_alerts: the outbox of streaming budget alerts. A row is written,
-- if its alert_id is absent, before the alert is produced to the alerts
-- topic or posted to the webhook, and each channel then marks its own
-- delivery: so a level is alerted once per subject and period, and a crash
-- between raising and delivering loses nothing (docs/streaming.md).
CREATE TABLE IF NOT EXISTS budget_alerts (
    alert_id          VARCHAR   NOT NULL PRIMARY KEY,
    scope             VARCHAR   NOT NULL,
    name              VARCHAR   NOT NULL,
    period            VARCHAR   NOT NULL,
    period_start      TIMESTAMP NOT NULL,
    period_end        TIMESTAMP NOT NULL,
    level             VARCHAR   NOT NULL,
    spend_usd         DOUBLE    NOT NULL,
    budget_usd        DOUBLE    NOT NULL,
    share             DOUBLE    NOT NULL,
    threshold         DOUBLE    NOT NULL,
    basis             VARCHAR   NOT NULL,
    latest_event_time TIMESTAMP,
    raised_at         TIMESTAMP NOT NULL,
    produced_at       TIMESTAMP,
    webhook           VARCHAR   NOT NULL,
    webhook_at        TIMESTAMP
);
COMMENT ON TABLE budget_alerts IS 'Streaming budget alerts, one per subject, period and level: the outbox of the alerts topic and the webhook.';
COMMENT ON COLUMN budget_alerts.alert_id IS 'Digest of scope, name, period, period_start and level; the Kafka key and the webhook''s X-Obolus-Alert-Id.';
COMMENT ON COLUMN budget_alerts.scope IS 'user, team or cost_center.';
COMMENT ON COLUMN budget_alerts.name IS 'The end user, team or cost center.';
COMMENT ON COLUMN budget_alerts.period IS 'day or month (UTC).';
COMMENT ON COLUMN budget_alerts.period_start IS 'First instant of the period, UTC.';
COMMENT ON COLUMN budget_alerts.period_end IS 'End of the period (exclusive), UTC.';
COMMENT ON COLUMN budget_alerts.level IS 'warn or critical.';
COMMENT ON COLUMN budget_alerts.spend_usd IS 'Spend in the period when the alert was raised, USD (list price).';
COMMENT ON COLUMN budget_alerts.budget_usd IS 'The budget for the period, USD.';
COMMENT ON COLUMN budget_alerts.share IS 'spend_usd / budget_usd when raised.';
COMMENT ON COLUMN budget_alerts.threshold IS 'The level''s fraction of the budget (budgets.warn or budgets.critical).';
COMMENT ON COLUMN budget_alerts.basis IS 'What spend is measured in: list (attribution cost_usd).';
COMMENT ON COLUMN budget_alerts.latest_event_time IS 'Latest usage event time counted in spend_usd, UTC.';
COMMENT ON COLUMN budget_alerts.raised_at IS 'When the load stage raised the alert, UTC.';
COMMENT ON COLUMN budget_alerts.produced_at IS 'When the alerts topic acknowledged it (or it was found there after a restart); NULL until then.';
COMMENT ON COLUMN budget_alerts.webhook IS 'Webhook delivery: off (no webhook configured), pending, delivered, or failed (refused with a 4xx).';
COMMENT ON COLUMN budget_alerts.webhook_at IS 'When the webhook delivery reached delivered or failed, UTC.';
