-- attribution: one row per gateway invocation and end user (schemas.Attribution).
-- Logical key (invocation_id, end_user); Delta has no enforced keys, so obolus
-- keeps it unique itself: every write is one MERGE on that key whose source
-- holds each key once.
-- Liquid clustering on (event_date, end_user), not partitioning: a day of one
-- workspace is far below the 1 GB a Delta partition should hold, analysts
-- filter by date range and then by user or team, and the MERGE of obolus bounds
-- the target by event_date, so both prune files on the first key.
CREATE TABLE IF NOT EXISTS attribution (
    invocation_id               STRING NOT NULL    COMMENT 'Gateway invocation id (system.ai_gateway.usage.invocation_id, or databricks_request_id for legacy endpoint_usage rows); unique per call.',
    request_id                  STRING NOT NULL    COMMENT 'Gateway request_id; can repeat across invocations (multi-turn calls, guardrail checks).',
    event_time                  TIMESTAMP NOT NULL COMMENT 'When the invocation happened, UTC, microsecond precision.',
    event_date                  DATE NOT NULL      COMMENT 'UTC calendar date of event_time.',
    account_id                  STRING NOT NULL    COMMENT 'Databricks account id.',
    workspace_id                STRING NOT NULL    COMMENT 'Databricks workspace id.',
    endpoint_id                 STRING NOT NULL    COMMENT 'Gateway endpoint id (served entity id for legacy rows).',
    endpoint_name               STRING NOT NULL    COMMENT 'Gateway endpoint name the agent called.',
    destination_model           STRING NOT NULL    COMMENT 'Model the gateway routed the call to.',
    requester                   STRING NOT NULL    COMMENT 'Identity that called the gateway: usually the service principal of the agent.',
    status_code                 INT NOT NULL       COMMENT 'HTTP status of the gateway call.',
    usage_source                STRING NOT NULL    COMMENT 'Table the usage row came from: system.ai_gateway.usage or system.serving.endpoint_usage.',
    end_user                    STRING NOT NULL    COMMENT 'Person who spent the tokens; for unattributed rows the requester (service principal), which keeps ownership.',
    team                        STRING NOT NULL    COMMENT 'Team of the end user from the org directory; unassigned when unknown or unattributed.',
    cost_center                 STRING NOT NULL    COMMENT 'Cost center of the end user from the org directory; empty when unknown.',
    agent_endpoint              STRING NOT NULL    COMMENT 'Model Serving endpoint of the agent request the invocation was matched to; empty when unattributed.',
    trace_id                    STRING NOT NULL    COMMENT 'MLflow trace id of the matched agent request, when known.',
    agent_request_id            STRING NOT NULL    COMMENT 'databricks_request_id of the matched agent request, when known.',
    session                     STRING NOT NULL    COMMENT 'MLflow session (mlflow.trace.session) of the matched agent request, when known.',
    match_method                STRING NOT NULL    COMMENT 'How the end user was found: tag_user, trace_id, request_id, time_window, time_window_split, time_window_nearest, time_window_likely or unattributed.',
    match_confidence            DOUBLE NOT NULL    COMMENT 'Confidence in the match, 0..1: 1 for id methods, lower for time-window matches, 0 when unattributed.',
    candidates                  INT NOT NULL       COMMENT 'Number of agent requests that could have made the call.',
    weight                      DOUBLE NOT NULL    COMMENT 'Share of the invocation this row carries; 1 except on split rows, whose weights sum to 1. Sum it to count invocations.',
    reason                      STRING NOT NULL    COMMENT 'Why the row is unattributed (no_candidate, ambiguous, id_not_found, no_rule_matched, ...); empty when attributed.',
    input_tokens                BIGINT NOT NULL    COMMENT 'Input tokens of this row (split rows: the count of the invocation apportioned by weight, summing exactly).',
    output_tokens               BIGINT NOT NULL    COMMENT 'Output tokens of this row, apportioned like input_tokens.',
    total_tokens                BIGINT NOT NULL    COMMENT 'Total tokens of this row, apportioned like input_tokens.',
    cache_read_input_tokens     BIGINT NOT NULL    COMMENT 'Input tokens served from the prompt cache, apportioned like input_tokens.',
    cache_creation_input_tokens BIGINT NOT NULL    COMMENT 'Input tokens written to the prompt cache, apportioned like input_tokens.',
    output_reasoning_tokens     BIGINT NOT NULL    COMMENT 'Output tokens spent on reasoning, apportioned like input_tokens.',
    cost_usd                    DOUBLE NOT NULL    COMMENT 'Estimated cost of this row in US dollars from the price list.',
    price_list_version          STRING NOT NULL    COMMENT 'Version of the price list cost_usd was computed with.',
    version                     BIGINT NOT NULL    COMMENT 'Restatement order of the invocation: a stored invocation is only replaced by rows of an equal or higher version.',
    run_id                      STRING NOT NULL    COMMENT 'Run that wrote the row (runs.run_id).',
    processed_at                TIMESTAMP          COMMENT 'When the row was computed, UTC; NULL when the producer did not say.'
)
USING DELTA
CLUSTER BY (event_date, end_user)
COMMENT 'Gateway invocations assigned to end users: one row per invocation, or one per candidate end user under the split policy (weights sum to 1). Key (invocation_id, end_user).'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
