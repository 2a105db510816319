-- stage_attribution: attribution rows on their way in. A pull-mode write
-- inserts the rows of one window here in batches (each within the statement
-- limits of the warehouse), then replaces them into attribution with one atomic
-- MERGE and deletes its stage. Key (stage_id, invocation_id, copy_seq, end_user).
-- Clustered by stage_id: every statement touches one stage.
CREATE TABLE IF NOT EXISTS stage_attribution (
    stage_id                    STRING NOT NULL    COMMENT 'The write this row belongs to; deleted when the write completes.',
    invocation_id               STRING NOT NULL    COMMENT 'As attribution.invocation_id.',
    request_id                  STRING NOT NULL    COMMENT 'As attribution.request_id.',
    event_time                  TIMESTAMP NOT NULL COMMENT 'As attribution.event_time.',
    event_date                  DATE NOT NULL      COMMENT 'As attribution.event_date.',
    account_id                  STRING NOT NULL    COMMENT 'As attribution.account_id.',
    workspace_id                STRING NOT NULL    COMMENT 'As attribution.workspace_id.',
    endpoint_id                 STRING NOT NULL    COMMENT 'As attribution.endpoint_id.',
    endpoint_name               STRING NOT NULL    COMMENT 'As attribution.endpoint_name.',
    destination_model           STRING NOT NULL    COMMENT 'As attribution.destination_model.',
    requester                   STRING NOT NULL    COMMENT 'As attribution.requester.',
    status_code                 INT NOT NULL       COMMENT 'As attribution.status_code.',
    usage_source                STRING NOT NULL    COMMENT 'As attribution.usage_source.',
    end_user                    STRING NOT NULL    COMMENT 'As attribution.end_user.',
    team                        STRING NOT NULL    COMMENT 'As attribution.team.',
    cost_center                 STRING NOT NULL    COMMENT 'As attribution.cost_center.',
    agent_endpoint              STRING NOT NULL    COMMENT 'As attribution.agent_endpoint.',
    trace_id                    STRING NOT NULL    COMMENT 'As attribution.trace_id.',
    agent_request_id            STRING NOT NULL    COMMENT 'As attribution.agent_request_id.',
    session                     STRING NOT NULL    COMMENT 'As attribution.session.',
    match_method                STRING NOT NULL    COMMENT 'As attribution.match_method.',
    match_confidence            DOUBLE NOT NULL    COMMENT 'As attribution.match_confidence.',
    candidates                  INT NOT NULL       COMMENT 'As attribution.candidates.',
    weight                      DOUBLE NOT NULL    COMMENT 'As attribution.weight.',
    reason                      STRING NOT NULL    COMMENT 'As attribution.reason.',
    input_tokens                BIGINT NOT NULL    COMMENT 'As attribution.input_tokens.',
    output_tokens               BIGINT NOT NULL    COMMENT 'As attribution.output_tokens.',
    total_tokens                BIGINT NOT NULL    COMMENT 'As attribution.total_tokens.',
    cache_read_input_tokens     BIGINT NOT NULL    COMMENT 'As attribution.cache_read_input_tokens.',
    cache_creation_input_tokens BIGINT NOT NULL    COMMENT 'As attribution.cache_creation_input_tokens.',
    output_reasoning_tokens     BIGINT NOT NULL    COMMENT 'As attribution.output_reasoning_tokens.',
    cost_usd                    DOUBLE NOT NULL    COMMENT 'As attribution.cost_usd.',
    price_list_version          STRING NOT NULL    COMMENT 'As attribution.price_list_version.',
    version                     BIGINT NOT NULL    COMMENT 'As attribution.version.',
    run_id                      STRING NOT NULL    COMMENT 'As attribution.run_id.',
    processed_at                TIMESTAMP          COMMENT 'As attribution.processed_at.',
    copy_seq                    BIGINT             COMMENT 'Which usage row (copy) of the invocation the row came from: its read order in the run. The write keeps the copy with the earliest event time, then the most tokens, then the lowest copy_seq.',
    copy_event_ns               BIGINT             COMMENT 'The copy''s event_time, unix nanoseconds.',
    copy_total_tokens           BIGINT             COMMENT 'The copy''s total_tokens.',
    copy_input_tokens           BIGINT             COMMENT 'The copy''s input_tokens.',
    copy_masked                 BIGINT             COMMENT 'For an id-linked call, what the time-window rule answers with its ids masked (schemas.MaskedCode), else 0; counted for the run''s calibration.'
)
USING DELTA
CLUSTER BY (stage_id)
COMMENT 'Internal: attribution rows of pull-mode writes in flight. Empty between runs; rows of a failed write stay until its stage is written again.'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'true');
