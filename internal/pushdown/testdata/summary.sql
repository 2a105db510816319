-- obolus pushdown: what the window holds, for the run's reconciliation.
WITH
-- Gateway usage of the window, one row per table row, in the engine's shape.
-- valid is false where pull mode dead-letters the row (missing ids, unknown
-- schema_version, counts negative or beyond the limit, times before 2000);
-- request_tags values under the configured keys become one column each.
usage_rows AS (
  -- system.ai_gateway.usage (usage)
  SELECT
    u.`invocation_id` AS invocation_id,
    coalesce(u.`request_id`, '') AS request_id,
    coalesce(u.`account_id`, '') AS account_id,
    coalesce(u.`workspace_id`, '') AS workspace_id,
    u.`event_time` AS event_time,
    coalesce(u.`endpoint_id`, '') AS endpoint_id,
    coalesce(u.`endpoint_name`, '') AS endpoint_name,
    coalesce(u.`destination_name`, '') AS destination_name,
    coalesce(u.`destination_model`, '') AS destination_model,
    coalesce(u.`requester`, '') AS requester,
    coalesce(u.`status_code`, 0) AS status_code,
    coalesce(u.`input_tokens`, 0) AS input_tokens,
    coalesce(u.`output_tokens`, 0) AS output_tokens,
    coalesce(u.`total_tokens`, 0) AS total_tokens,
    coalesce(u.`token_details`.cache_read_input_tokens, 0) AS cache_read_input_tokens,
    coalesce(u.`token_details`.cache_creation_input_tokens, 0) AS cache_creation_input_tokens,
    coalesce(u.`token_details`.output_reasoning_tokens, 0) AS output_reasoning_tokens,
    'system.ai_gateway.usage' AS usage_source,
    CASE WHEN nullif(u.`request_tags`[:user_key_0], '') IS NOT NULL THEN nullif(u.`request_tags`[:user_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_0_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS user_tag_0,
    CASE WHEN nullif(u.`request_tags`[:user_key_1], '') IS NOT NULL THEN nullif(u.`request_tags`[:user_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_1_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS user_tag_1,
    CASE WHEN nullif(u.`request_tags`[:user_key_2], '') IS NOT NULL THEN nullif(u.`request_tags`[:user_key_2], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_2_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_2_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS user_tag_2,
    CASE WHEN nullif(u.`request_tags`[:trace_key_0], '') IS NOT NULL THEN nullif(u.`request_tags`[:trace_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_0_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS trace_tag_0,
    CASE WHEN nullif(u.`request_tags`[:trace_key_1], '') IS NOT NULL THEN nullif(u.`request_tags`[:trace_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_1_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS trace_tag_1,
    CASE WHEN nullif(u.`request_tags`[:trace_key_2], '') IS NOT NULL THEN nullif(u.`request_tags`[:trace_key_2], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_2_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_2_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS trace_tag_2,
    CASE WHEN nullif(u.`request_tags`[:request_key_0], '') IS NOT NULL THEN nullif(u.`request_tags`[:request_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :request_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_0_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS request_tag_0,
    CASE WHEN nullif(u.`request_tags`[:request_key_1], '') IS NOT NULL THEN nullif(u.`request_tags`[:request_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :request_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_1_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS request_tag_1,
    CASE WHEN nullif(u.`request_tags`[:request_key_2], '') IS NOT NULL THEN nullif(u.`request_tags`[:request_key_2], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :request_key_2_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`request_tags`[array_min(filter(map_keys(u.`request_tags`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_2_norm AND u.`request_tags`[tag_key] <> ''))], '') END AS request_tag_2,
    coalesce(u.`event_time` >= :earliest_time, false)
      AND coalesce(u.`invocation_id`, '') <> ''
      AND coalesce(u.`requester`, '') <> ''
      AND (u.`schema_version` IS NULL OR u.`schema_version` BETWEEN 1 AND 1)
      AND coalesce(u.`input_tokens`, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`output_tokens`, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`total_tokens`, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`token_details`.cache_read_input_tokens, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`token_details`.cache_creation_input_tokens, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`token_details`.output_reasoning_tokens, 0) BETWEEN 0 AND :max_tokens AS valid
  FROM (SELECT t0.*, translate(concat(chr(1), array_join(map_keys(t0.`request_tags`), chr(1)), chr(1)), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') AS obolus_folded_tag_keys FROM `system`.`ai_gateway`.`usage` t0) u
  WHERE u.`event_time` >= :usage_from AND u.`event_time` < :usage_to
  UNION ALL
  -- system.serving.endpoint_usage (legacy_usage)
  SELECT
    u.`databricks_request_id` AS invocation_id,
    coalesce(u.`databricks_request_id`, '') AS request_id,
    coalesce(u.`account_id`, '') AS account_id,
    coalesce(u.`workspace_id`, '') AS workspace_id,
    u.`request_time` AS event_time,
    coalesce(u.`served_entity_id`, '') AS endpoint_id,
    '' AS endpoint_name,
    '' AS destination_name,
    '' AS destination_model,
    coalesce(u.`requester`, '') AS requester,
    coalesce(u.`status_code`, 0) AS status_code,
    coalesce(u.`input_token_count`, 0) AS input_tokens,
    coalesce(u.`output_token_count`, 0) AS output_tokens,
    coalesce(u.`input_token_count`, 0) + coalesce(u.`output_token_count`, 0) AS total_tokens,
    0 AS cache_read_input_tokens,
    0 AS cache_creation_input_tokens,
    0 AS output_reasoning_tokens,
    'system.serving.endpoint_usage' AS usage_source,
    CASE WHEN nullif(u.`usage_context`[:user_key_0], '') IS NOT NULL THEN nullif(u.`usage_context`[:user_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_0_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS user_tag_0,
    CASE WHEN nullif(u.`usage_context`[:user_key_1], '') IS NOT NULL THEN nullif(u.`usage_context`[:user_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_1_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS user_tag_1,
    CASE WHEN nullif(u.`usage_context`[:user_key_2], '') IS NOT NULL THEN nullif(u.`usage_context`[:user_key_2], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :user_key_2_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :user_key_2_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS user_tag_2,
    CASE WHEN nullif(u.`usage_context`[:trace_key_0], '') IS NOT NULL THEN nullif(u.`usage_context`[:trace_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_0_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS trace_tag_0,
    CASE WHEN nullif(u.`usage_context`[:trace_key_1], '') IS NOT NULL THEN nullif(u.`usage_context`[:trace_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_1_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS trace_tag_1,
    CASE WHEN nullif(u.`usage_context`[:trace_key_2], '') IS NOT NULL THEN nullif(u.`usage_context`[:trace_key_2], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :trace_key_2_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :trace_key_2_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS trace_tag_2,
    CASE WHEN nullif(u.`usage_context`[:request_key_0], '') IS NOT NULL THEN nullif(u.`usage_context`[:request_key_0], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :request_key_0_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_0_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS request_tag_0,
    CASE WHEN nullif(u.`usage_context`[:request_key_1], '') IS NOT NULL THEN nullif(u.`usage_context`[:request_key_1], '')
      WHEN coalesce(instr(u.obolus_folded_tag_keys, concat(chr(1), :request_key_1_norm, chr(1))), 0) = 0 THEN NULL
      ELSE nullif(u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_1_norm AND u.`usage_context`[tag_key] <> ''))], '') END AS request_tag_1,
    nullif(CASE
      WHEN nullif(u.`usage_context`[:request_key_2], '') IS NOT NULL THEN u.`usage_context`[:request_key_2]
      WHEN (NOT coalesce(array_contains(map_keys(u.`usage_context`), 'client_request_id'), false) AND u.`client_request_id` <> '') THEN u.`client_request_id`
      WHEN (NOT coalesce(array_contains(map_keys(u.`usage_context`), 'client_request_id'), false) AND u.`client_request_id` <> '') AND (array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_2_norm AND u.`usage_context`[tag_key] <> '')) IS NULL OR 'client_request_id' < array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_2_norm AND u.`usage_context`[tag_key] <> ''))) THEN u.`client_request_id`
      ELSE u.`usage_context`[array_min(filter(map_keys(u.`usage_context`), tag_key -> translate(tag_key, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') = :request_key_2_norm AND u.`usage_context`[tag_key] <> ''))]
    END, '') AS request_tag_2,
    coalesce(u.`request_time` >= :earliest_time, false)
      AND coalesce(u.`databricks_request_id`, '') <> ''
      AND coalesce(u.`requester`, '') <> ''
      AND coalesce(u.`input_token_count`, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`output_token_count`, 0) BETWEEN 0 AND :max_tokens
      AND coalesce(u.`input_character_count`, 0) >= 0
      AND coalesce(u.`output_character_count`, 0) >= 0 AS valid
  FROM (SELECT t0.*, translate(concat(chr(1), array_join(map_keys(t0.`usage_context`), chr(1)), chr(1)), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ-.', 'abcdefghijklmnopqrstuvwxyz__') AS obolus_folded_tag_keys FROM `system`.`serving`.`endpoint_usage` t0) u
  WHERE u.`request_time` >= :usage_from AND u.`request_time` < :usage_to
),
-- One row per invocation: duplicates describe one call (enrich.Dedup keeps the
-- earliest, then the one with most tokens).
events AS (
  SELECT * FROM (
    SELECT r.*, row_number() OVER (
      PARTITION BY r.invocation_id
      ORDER BY r.event_time, r.total_tokens DESC, r.usage_source, r.request_id, r.requester) AS dup_rank
    FROM usage_rows r
    WHERE r.valid
  ) d
  WHERE d.dup_rank = 1
),
-- Agent log rows of the window as agent requests, numbered (source_no, row_no)
-- in the order pull mode reads them: tables in configuration order, rows by
-- time and id. Where several rows describe one request, the first to name a
-- field wins.
agent_rows AS (
  -- lakehouse.agents.support_bot_payload (payload)
  SELECT
    0 AS source_no,
    row_number() OVER (ORDER BY p.`request_time` ASC NULLS FIRST, p.`req_id` ASC NULLS FIRST, p.`client_request_id` ASC NULLS FIRST, p.`user_email` ASC NULLS FIRST) AS row_no,
    0 AS kind_rank,
    p.`req_id` AS agent_request_id,
    '' AS trace_id,
    coalesce(p.`client_request_id`, '') AS client_request_id,
    coalesce(p.`user_email`, '') AS end_user,
    '' AS session,
    :agent_endpoint_0 AS agent_endpoint,
    :service_principal_0 AS service_principal,
    p.`request_time` AS start_time,
    coalesce(p.`execution_duration_ms`, 0) AS duration_ms
  FROM `lakehouse`.`agents`.`support_bot_payload` p
  WHERE p.`request_time` >= :agent_from AND p.`request_time` < :agent_to
    AND coalesce(p.`req_id`, '') <> ''
    AND coalesce(p.`execution_duration_ms`, 0) BETWEEN 0 AND :max_duration_ms
    AND p.`request_time` >= :earliest_time
  UNION ALL
  -- lakehouse.agents.support_bot_traces (trace)
  SELECT
    1 AS source_no,
    row_number() OVER (ORDER BY t.`request_time` ASC NULLS FIRST, t.`trace_id` ASC NULLS FIRST, t.`client_request_id` ASC NULLS FIRST) AS row_no,
    1 AS kind_rank,
    coalesce(t.`client_request_id`, '') AS agent_request_id,
    t.`trace_id` AS trace_id,
    coalesce(t.`client_request_id`, '') AS client_request_id,
    coalesce(t.`trace_metadata`['mlflow.trace.user'], '') AS end_user,
    coalesce(t.`trace_metadata`['mlflow.trace.session'], '') AS session,
    coalesce(t.`trace_metadata`['mlflow.databricks.modelServingEndpointName'], '') AS agent_endpoint,
    :service_principal_1 AS service_principal,
    t.`request_time` AS start_time,
    coalesce(t.`execution_duration_ms`, 0) AS duration_ms
  FROM `lakehouse`.`agents`.`support_bot_traces` t
  WHERE t.`request_time` >= :agent_from AND t.`request_time` < :agent_to
    AND coalesce(t.`trace_id`, '') <> ''
    AND coalesce(t.`execution_duration_ms`, 0) BETWEEN 0 AND :max_duration_ms
    AND t.`request_time` >= :earliest_time
)
SELECT
  (SELECT count(*) FROM usage_rows) AS rows_read,
  (SELECT count(*) FROM usage_rows WHERE NOT valid) AS dead_lettered,
  (SELECT count(*) FROM events) AS invocations,
  (SELECT coalesce(sum(input_tokens), 0) FROM events) AS input_tokens_in,
  (SELECT coalesce(sum(total_tokens), 0) FROM events) AS total_tokens_in,
  (SELECT min(event_time) FROM events) AS first_event,
  (SELECT count(*) FROM agent_rows) AS agent_rows,
  (SELECT count(DISTINCT coalesce(nullif(agent_request_id, ''), nullif(trace_id, ''), client_request_id)) FROM agent_rows) AS agent_requests
