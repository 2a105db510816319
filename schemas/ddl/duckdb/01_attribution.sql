-- attribution: one row per gateway invocation and end user (schemas.Attribution).
-- Logical key (invocation_id, end_user); the store keeps it unique by replacing
-- all rows of an invocation at once, so no index is declared (an ART index
-- would slow the bulk replace of a day's million rows).
CREATE TABLE IF NOT EXISTS attribution (
    invocation_id               VARCHAR   NOT NULL,
    request_id                  VARCHAR   NOT NULL,
    event_time                  TIMESTAMP NOT NULL,
    event_date                  DATE      NOT NULL,
    account_id                  VARCHAR   NOT NULL,
    workspace_id                VARCHAR   NOT NULL,
    endpoint_id                 VARCHAR   NOT NULL,
    endpoint_name               VARCHAR   NOT NULL,
    destination_model           VARCHAR   NOT NULL,
    requester                   VARCHAR   NOT NULL,
    status_code                 INTEGER   NOT NULL,
    usage_source                VARCHAR   NOT NULL,
    end_user                    VARCHAR   NOT NULL,
    team                        VARCHAR   NOT NULL,
    cost_center                 VARCHAR   NOT NULL,
    agent_endpoint              VARCHAR   NOT NULL,
    trace_id                    VARCHAR   NOT NULL,
    agent_request_id            VARCHAR   NOT NULL,
    session                     VARCHAR   NOT NULL,
    match_method                VARCHAR   NOT NULL,
    match_confidence            DOUBLE    NOT NULL,
    candidates                  INTEGER   NOT NULL,
    weight                      DOUBLE    NOT NULL,
    reason                      VARCHAR   NOT NULL,
    input_tokens                BIGINT    NOT NULL,
    output_tokens               BIGINT    NOT NULL,
    total_tokens                BIGINT    NOT NULL,
    cache_read_input_tokens     BIGINT    NOT NULL,
    cache_creation_input_tokens BIGINT    NOT NULL,
    output_reasoning_tokens     BIGINT    NOT NULL,
    cost_usd                    DOUBLE    NOT NULL,
    price_list_version          VARCHAR   NOT NULL,
    version                     BIGINT    NOT NULL,
    run_id                      VARCHAR   NOT NULL,
    processed_at                TIMESTAMP
);
COMMENT ON TABLE attribution IS 'Gateway invocations assigned to end users: one row per invocation, or one per candidate end user under the split policy (weights sum to 1). Key (invocation_id, end_user).';
COMMENT ON COLUMN attribution.invocation_id IS 'Gateway invocation id (system.ai_gateway.usage.invocation_id, or databricks_request_id for legacy endpoint_usage rows); unique per call.';
COMMENT ON COLUMN attribution.request_id IS 'Gateway request_id; can repeat across invocations (multi-turn calls, guardrail checks).';
COMMENT ON COLUMN attribution.event_time IS 'When the invocation happened, UTC, microsecond precision.';
COMMENT ON COLUMN attribution.event_date IS 'UTC calendar date of event_time.';
COMMENT ON COLUMN attribution.account_id IS 'Databricks account id.';
COMMENT ON COLUMN attribution.workspace_id IS 'Databricks workspace id.';
COMMENT ON COLUMN attribution.endpoint_id IS 'Gateway endpoint id (served entity id for legacy rows).';
COMMENT ON COLUMN attribution.endpoint_name IS 'Gateway endpoint name the agent called.';
COMMENT ON COLUMN attribution.destination_model IS 'Model the gateway routed the call to.';
COMMENT ON COLUMN attribution.requester IS 'Identity that called the gateway: usually the agent''s service principal.';
COMMENT ON COLUMN attribution.status_code IS 'HTTP status of the gateway call.';
COMMENT ON COLUMN attribution.usage_source IS 'Table the usage row came from: system.ai_gateway.usage or system.serving.endpoint_usage.';
COMMENT ON COLUMN attribution.end_user IS 'Person who spent the tokens; for unattributed rows the requester (service principal), which keeps ownership.';
COMMENT ON COLUMN attribution.team IS 'End user''s team from the org directory; unassigned when unknown or unattributed.';
COMMENT ON COLUMN attribution.cost_center IS 'End user''s cost center from the org directory; empty when unknown.';
COMMENT ON COLUMN attribution.agent_endpoint IS 'Model Serving endpoint of the agent request the invocation was matched to; empty when unattributed.';
COMMENT ON COLUMN attribution.trace_id IS 'MLflow trace id of the matched agent request, when known.';
COMMENT ON COLUMN attribution.agent_request_id IS 'databricks_request_id of the matched agent request, when known.';
COMMENT ON COLUMN attribution.session IS 'MLflow session (mlflow.trace.session) of the matched agent request, when known.';
COMMENT ON COLUMN attribution.match_method IS 'How the end user was found: tag_user, trace_id, request_id, time_window, time_window_split, time_window_nearest, time_window_likely or unattributed.';
COMMENT ON COLUMN attribution.match_confidence IS 'Confidence in the match, 0..1: 1 for id methods, lower for time-window matches, 0 when unattributed.';
COMMENT ON COLUMN attribution.candidates IS 'Number of agent requests that could have made the call.';
COMMENT ON COLUMN attribution.weight IS 'Share of the invocation this row carries; 1 except on split rows, whose weights sum to 1. Sum it to count invocations.';
COMMENT ON COLUMN attribution.reason IS 'Why the row is unattributed (no_candidate, ambiguous, id_not_found, no_rule_matched, ...); empty when attributed.';
COMMENT ON COLUMN attribution.input_tokens IS 'Input tokens of this row (split rows: the invocation''s count apportioned by weight, summing exactly).';
COMMENT ON COLUMN attribution.output_tokens IS 'Output tokens of this row, apportioned like input_tokens.';
COMMENT ON COLUMN attribution.total_tokens IS 'Total tokens of this row, apportioned like input_tokens.';
COMMENT ON COLUMN attribution.cache_read_input_tokens IS 'Input tokens served from the prompt cache, apportioned like input_tokens.';
COMMENT ON COLUMN attribution.cache_creation_input_tokens IS 'Input tokens written to the prompt cache, apportioned like input_tokens.';
COMMENT ON COLUMN attribution.output_reasoning_tokens IS 'Output tokens spent on reasoning, apportioned like input_tokens.';
COMMENT ON COLUMN attribution.cost_usd IS 'Estimated cost of this row in US dollars from the price list.';
COMMENT ON COLUMN attribution.price_list_version IS 'Version of the price list cost_usd was computed with.';
COMMENT ON COLUMN attribution.version IS 'Restatement order of the invocation: a stored invocation is only replaced by rows of an equal or higher version.';
COMMENT ON COLUMN attribution.run_id IS 'Run that wrote the row (runs.run_id).';
COMMENT ON COLUMN attribution.processed_at IS 'When the row was computed, UTC; NULL when the producer did not say.';
