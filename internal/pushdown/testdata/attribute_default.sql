-- obolus pushdown: attribute gateway usage of [2026-10-31T22:00:00Z, 2026-11-02T00:00:00Z) with agent logs of
-- [2026-10-31T21:00:00Z, 2026-11-02T00:01:02Z) and replace attribution rows of [2026-10-31T22:00:00Z, 2026-11-02T00:00:00Z).
MERGE INTO `main`.`obolus`.`attribution` AS t
USING (
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
  ),
  -- One row per agent request: rows with the same key (agent request id, else
  -- trace id, else client request id) merge as enrich.Index merges them, the
  -- same whatever the order of the tables: a field from the most trusted kind
  -- of row that has it (kind_rank: payload 0, trace 1), the smallest value
  -- within a kind; times from the most trusted kind only.
  agent_requests AS (
    SELECT
      req_key,
      min(arrival) AS created,
      coalesce(substr(min(CAST(kind_rank AS STRING) || agent_request_id) FILTER (WHERE agent_request_id <> ''), 2), '') AS agent_request_id,
      coalesce(substr(min(CAST(kind_rank AS STRING) || trace_id) FILTER (WHERE trace_id <> ''), 2), '') AS trace_id,
      coalesce(substr(min(CAST(kind_rank AS STRING) || client_request_id) FILTER (WHERE client_request_id <> ''), 2), '') AS client_request_id,
      coalesce(substr(min(CAST(kind_rank AS STRING) || end_user) FILTER (WHERE end_user <> ''), 2), '') AS end_user,
      coalesce(substr(min(CAST(kind_rank AS STRING) || session) FILTER (WHERE session <> ''), 2), '') AS session,
      coalesce(substr(min(CAST(kind_rank AS STRING) || agent_endpoint) FILTER (WHERE agent_endpoint <> ''), 2), '') AS agent_endpoint,
      coalesce(substr(min(CAST(kind_rank AS STRING) || service_principal) FILTER (WHERE service_principal <> ''), 2), '') AS service_principal,
      min(start_time) FILTER (WHERE kind_rank = best_rank) AS start_time,
      max(duration_ms) FILTER (WHERE kind_rank = best_rank) AS duration_ms
    FROM (
      SELECT x.*, min(x.kind_rank) OVER (PARTITION BY x.req_key) AS best_rank
      FROM (
        SELECT a.*,
          a.source_no * 1000000000000 + a.row_no AS arrival,
          coalesce(nullif(a.agent_request_id, ''), nullif(a.trace_id, ''), a.client_request_id) AS req_key
        FROM agent_rows a
      ) x
    ) y
    GROUP BY req_key
  ),
  -- Request intervals: [start, end] for the running test; [lo_time, hi_time]
  -- widened by skew + crowd_margin for the crowd test.
  request_spans AS (
    SELECT r.*,
      r.start_time + (CAST((r.duration_ms - r.duration_ms % 1000) / 1000 AS BIGINT) * INTERVAL '1' SECOND + (r.duration_ms % 1000) * INTERVAL '0.001' SECOND) AS end_time,
      r.start_time - (:wide_s * INTERVAL '1' SECOND + :wide_us * INTERVAL '0.000001' SECOND) AS lo_time,
      r.start_time + (CAST((r.duration_ms - r.duration_ms % 1000) / 1000 AS BIGINT) * INTERVAL '1' SECOND + (r.duration_ms % 1000) * INTERVAL '0.001' SECOND) + (:wide_s * INTERVAL '1' SECOND + :wide_us * INTERVAL '0.000001' SECOND) AS hi_time
    FROM agent_requests r
    WHERE r.service_principal <> ''
  ),
  -- Lookup by trace id (any spelling enrich.NormalizeTraceID accepts) and by
  -- agent or client request id; an id two requests share belongs to the one
  -- created first.
  request_trace_keys AS (
    -- tp: the value if it is a traceparent (vv-<trace 32>-<parent 16>-ff[-...]);
    -- hex: the value without a tr- or trace:/<location>/ prefix, if 32 hex digits.
    SELECT x.*,
      CASE
        WHEN x.tp <> '' AND substr(x.tp, 4, 32) <> '00000000000000000000000000000000' AND substr(x.tp, 37, 16) <> '0000000000000000'
          AND substr(x.tp, 1, 2) <> 'ff' AND (substr(x.tp, 1, 2) <> '00' OR length(x.tp) = 55)
          THEN substr(x.tp, 4, 32)
        WHEN x.hex NOT IN ('', '00000000000000000000000000000000') THEN x.hex
        ELSE x.s
      END AS trace_key
    FROM (
      SELECT y.*,
        regexp_extract(y.s, '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$', 0) AS tp,
        regexp_extract(lower(CASE
          WHEN lower(trim(y.trace_id)) LIKE 'tr-%' THEN substr(trim(y.trace_id), 4)
          WHEN lower(trim(y.trace_id)) LIKE 'trace:/%' THEN regexp_extract(trim(y.trace_id), '([^/]*)$', 1)
          ELSE trim(y.trace_id)
        END), '^[0-9a-f]{32}$', 0) AS hex
      FROM (SELECT z.*, lower(trim(z.trace_id)) AS s FROM agent_requests z) y
    ) x
  ),
  trace_index AS (
    SELECT trace_key, min_by(req_key, created) AS req_key
    FROM request_trace_keys
    WHERE trace_id <> '' AND trace_key <> ''
    GROUP BY trace_key
  ),
  request_index AS (
    SELECT request_key, min_by(req_key, created) AS req_key
    FROM (
      SELECT r.agent_request_id AS request_key, r.req_key, r.created FROM agent_requests r
      UNION ALL
      SELECT r.client_request_id AS request_key, r.req_key, r.created FROM agent_requests r
    ) x
    WHERE request_key <> ''
    GROUP BY request_key
  ),
  -- Trace ids in the tags, one row per event and key (k: the place of the key
  -- in match.trace_tag_keys).
  tag_trace_ids AS (
    SELECT invocation_id, 0 AS k, trace_tag_0 AS id FROM events WHERE trace_tag_0 IS NOT NULL
    UNION ALL
    SELECT invocation_id, 1 AS k, trace_tag_1 AS id FROM events WHERE trace_tag_1 IS NOT NULL
    UNION ALL
    SELECT invocation_id, 2 AS k, trace_tag_2 AS id FROM events WHERE trace_tag_2 IS NOT NULL
  ),
  tag_trace_keys AS (
    -- tp: the value if it is a traceparent (vv-<trace 32>-<parent 16>-ff[-...]);
    -- hex: the value without a tr- or trace:/<location>/ prefix, if 32 hex digits.
    SELECT x.*,
      CASE
        WHEN x.tp <> '' AND substr(x.tp, 4, 32) <> '00000000000000000000000000000000' AND substr(x.tp, 37, 16) <> '0000000000000000'
          AND substr(x.tp, 1, 2) <> 'ff' AND (substr(x.tp, 1, 2) <> '00' OR length(x.tp) = 55)
          THEN substr(x.tp, 4, 32)
        WHEN x.hex NOT IN ('', '00000000000000000000000000000000') THEN x.hex
        ELSE x.s
      END AS trace_key
    FROM (
      SELECT y.*,
        regexp_extract(y.s, '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$', 0) AS tp,
        regexp_extract(lower(CASE
          WHEN lower(trim(y.id)) LIKE 'tr-%' THEN substr(trim(y.id), 4)
          WHEN lower(trim(y.id)) LIKE 'trace:/%' THEN regexp_extract(trim(y.id), '([^/]*)$', 1)
          ELSE trim(y.id)
        END), '^[0-9a-f]{32}$', 0) AS hex
      FROM (SELECT z.*, lower(trim(z.id)) AS s FROM tag_trace_ids z) y
    ) x
  ),
  trace_hits AS (
    SELECT t.invocation_id, min_by(i.req_key, t.k) AS req_key
    FROM tag_trace_keys t JOIN trace_index i ON i.trace_key = t.trace_key
    GROUP BY t.invocation_id
  ),
  -- Request ids in the tags, likewise.
  tag_request_ids AS (
    SELECT invocation_id, 0 AS k, request_tag_0 AS id FROM events WHERE request_tag_0 IS NOT NULL
    UNION ALL
    SELECT invocation_id, 1 AS k, request_tag_1 AS id FROM events WHERE request_tag_1 IS NOT NULL
    UNION ALL
    SELECT invocation_id, 2 AS k, request_tag_2 AS id FROM events WHERE request_tag_2 IS NOT NULL
  ),
  request_hits AS (
    SELECT t.invocation_id, min_by(i.req_key, t.k) AS req_key
    FROM tag_request_ids t JOIN request_index i ON i.request_key = t.id
    GROUP BY t.invocation_id
  ),
  -- Id matches, in the engine's order: a user named in the tags; else the first
  -- trace tag naming a known trace; else the first request tag naming a known
  -- request. id_seen: the tags carry an id at all.
  matched AS (
    SELECT e.*,
      coalesce(e.user_tag_0, e.user_tag_1, e.user_tag_2) AS tag_user,
      th.req_key AS trace_link,
      rh.req_key AS request_link,
      (e.trace_tag_0 IS NOT NULL OR e.trace_tag_1 IS NOT NULL OR e.trace_tag_2 IS NOT NULL OR e.request_tag_0 IS NOT NULL OR e.request_tag_1 IS NOT NULL OR e.request_tag_2 IS NOT NULL) AS id_seen
    FROM events e
    LEFT JOIN trace_hits th ON th.invocation_id = e.invocation_id
    LEFT JOIN request_hits rh ON rh.invocation_id = e.invocation_id
  ),
  -- What each event is decided by: a tag user, an id link, an id that names
  -- nothing known yet (left unattributed: the request is most likely late), or
  -- the time window.
  decided AS (
    SELECT m.*,
      CASE
        WHEN m.tag_user IS NOT NULL THEN 'tag_user'
        WHEN m.trace_link IS NOT NULL THEN 'trace_id'
        WHEN m.request_link IS NOT NULL THEN 'request_id'
        WHEN m.id_seen THEN 'id_not_found'
        ELSE 'window'
      END AS decision,
      coalesce(m.trace_link, m.request_link) AS link
    FROM matched m
  ),
  short_spans AS (
    SELECT s.*, date_trunc('MINUTE', s.lo_time) AS lo_bucket
    FROM request_spans s
    WHERE s.hi_time <= s.lo_time + INTERVAL '999' MINUTE
  ),
  -- Minute offsets 0..999 (hundreds, tens and units), up to the widest
  -- interval's length.
  bucket_offsets AS (
    SELECT h.k * 100 + t.k * 10 + u.k AS k
    FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS h(k)
    CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS t(k)
    CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS u(k)
    WHERE (h.k * 100 + t.k * 10 + u.k) * INTERVAL '1' MINUTE
          <= (SELECT max(s.hi_time - s.lo_time) FROM short_spans s) + INTERVAL '1' MINUTE
  ),
  -- Each interval once per minute bucket it touches, from the minute it starts
  -- in to the one it ends in.
  span_buckets AS (
    SELECT s.service_principal, s.req_key, s.start_time, s.end_time, s.lo_time, s.hi_time,
      s.lo_bucket + o.k * INTERVAL '1' MINUTE AS bucket
    FROM short_spans s
    JOIN bucket_offsets o ON s.lo_bucket + o.k * INTERVAL '1' MINUTE <= s.hi_time
  ),
  window_events AS (
    SELECT d.invocation_id, d.requester, d.event_time FROM decided d WHERE d.decision = 'window'
  ),
  window_pairs AS (
    SELECT w.invocation_id, w.event_time, s.req_key, s.start_time, s.end_time,
      s.start_time <= w.event_time + (:skew_s * INTERVAL '1' SECOND + :skew_us * INTERVAL '0.000001' SECOND)
        AND s.end_time + (:skew_s * INTERVAL '1' SECOND + :skew_us * INTERVAL '0.000001' SECOND) >= w.event_time AS running
    FROM window_events w
    JOIN span_buckets s
      ON s.service_principal = w.requester
     AND s.bucket = date_trunc('MINUTE', w.event_time)
    WHERE s.lo_time <= w.event_time AND s.hi_time >= w.event_time
    UNION ALL
    SELECT w.invocation_id, w.event_time, s.req_key, s.start_time, s.end_time,
      s.start_time <= w.event_time + (:skew_s * INTERVAL '1' SECOND + :skew_us * INTERVAL '0.000001' SECOND)
        AND s.end_time + (:skew_s * INTERVAL '1' SECOND + :skew_us * INTERVAL '0.000001' SECOND) >= w.event_time AS running
    FROM window_events w
    JOIN request_spans s ON s.service_principal = w.requester
    WHERE s.hi_time > s.lo_time + INTERVAL '999' MINUTE
      AND s.lo_time <= w.event_time AND s.hi_time >= w.event_time
  ),
  -- n: requests running at the event (the candidates); n_wide: also those
  -- within crowd_margin, which weaken a lone candidate.
  window_counts AS (
    SELECT invocation_id, count(*) FILTER (WHERE running) AS n, count(*) AS n_wide
    FROM window_pairs
    GROUP BY invocation_id
  ),
  -- The candidates in canonical order (start, key): pos numbers them for split
  -- rows; nearness ranks them by distance of their start to the event.
  window_candidates AS (
    SELECT p.invocation_id, p.req_key, p.start_time, p.end_time, wc.n, wc.n_wide,
      row_number() OVER (PARTITION BY p.invocation_id ORDER BY p.start_time, p.req_key) - 1 AS pos,
      row_number() OVER (
        PARTITION BY p.invocation_id
        ORDER BY CASE WHEN p.event_time >= p.start_time THEN p.event_time - p.start_time ELSE p.start_time - p.event_time END,
                 p.start_time, p.req_key) AS nearness
    FROM window_pairs p
    JOIN window_counts wc ON wc.invocation_id = p.invocation_id
    WHERE p.running
  ),
  -- The outcome of every event: method, reason, confidence, candidates, weight
  -- and the chosen request (split rows: pos numbers them, each holds share_num
  -- of parts candidates).
  outcomes AS (
    -- Matched by a tag user or an id: the linked request, when there is one.
    SELECT d.invocation_id, d.decision AS method, '' AS reason, 1e0 AS confidence,
      1 AS candidates, 1e0 AS weight, d.link AS chosen, 0 AS pos, 1 AS share_num, 1 AS parts
    FROM decided d
    WHERE d.decision IN ('tag_user', 'trace_id', 'request_id')
    UNION ALL
    -- Left unattributed before the time window: an unknown id, or no rule.
    SELECT d.invocation_id, 'unattributed', d.decision, 0e0, 0, 1e0, CAST(NULL AS STRING), 0, 1, 1
    FROM decided d
    WHERE d.decision IN ('id_not_found', 'no_rule_matched')
    UNION ALL
    -- Time window, nothing running.
    SELECT d.invocation_id, 'unattributed', 'no_candidate', 0e0, 0, 1e0, CAST(NULL AS STRING), 0, 1, 1
    FROM decided d
    WHERE d.decision = 'window'
      AND NOT EXISTS (SELECT 1 FROM window_candidates k WHERE k.invocation_id = d.invocation_id)
    UNION ALL
    -- Time window, one running: 0.95 / (requests within crowd_margin), times
    -- 0.75 when the event is only inside the skew allowance.
    SELECT d.invocation_id, 'time_window', '',
      CASE WHEN d.event_time < k.start_time OR d.event_time > k.end_time
        THEN 9.5e-1 / CAST(k.n_wide AS DOUBLE) * 7.5e-1
        ELSE 9.5e-1 / CAST(k.n_wide AS DOUBLE) END,
      1, 1e0, k.req_key, 0, 1, 1
    FROM decided d JOIN window_candidates k ON k.invocation_id = d.invocation_id AND k.n = 1
    UNION ALL
    -- Several running, policy unattributed: ambiguous.
    SELECT d.invocation_id, 'unattributed', 'ambiguous', 0e0, k.n, 1e0, CAST(NULL AS STRING), 0, 1, 1
    FROM decided d JOIN window_candidates k ON k.invocation_id = d.invocation_id AND k.n > 1 AND k.pos = 0
  ),
  -- Settle the end user: the tag user or the chosen request's; a match whose
  -- request names nobody is unattributed (request_has_no_user), except split
  -- shares, which the engine keeps with the requester as owner. Unattributed rows stay with the requester
  -- and carry no request.
  settled AS (
    SELECT e.*, o.method AS raw_method, o.reason AS raw_reason, o.confidence AS raw_confidence,
      o.candidates, o.weight, o.pos, o.share_num, o.parts,
      coalesce(e.tag_user, r.end_user, '') AS raw_user,
      coalesce(r.agent_endpoint, '') AS r_agent_endpoint, coalesce(r.trace_id, '') AS r_trace_id,
      coalesce(r.agent_request_id, '') AS r_agent_request_id, coalesce(r.session, '') AS r_session
    FROM outcomes o
    JOIN decided e ON e.invocation_id = o.invocation_id
    LEFT JOIN agent_requests r ON r.req_key = o.chosen
  ),
  resolved AS (
    SELECT s.*,
      s.raw_method NOT IN ('unattributed', 'time_window_split') AND s.raw_user = '' AS no_user
    FROM settled s
  ),
  final_rows AS (
    SELECT r.*,
      CASE WHEN r.no_user THEN 'unattributed' ELSE r.raw_method END AS match_method,
      CASE WHEN r.no_user OR r.raw_user = '' AND r.raw_method = 'time_window_split' THEN 'request_has_no_user' ELSE r.raw_reason END AS reason,
      CASE WHEN r.no_user THEN 0e0 ELSE r.raw_confidence END AS match_confidence
    FROM resolved r
  ),
  -- Tokens: split shares get the invocation's counts apportioned exactly like
  -- enrich.ApportionCounts: floor(count * share_num / parts) each, and what the
  -- floors leave over one each to the largest remainders, ties to the earlier share.
  floored AS (
    SELECT
      f.invocation_id, f.request_id, f.event_time, f.account_id, f.workspace_id, f.endpoint_id, f.endpoint_name,
      f.destination_name, f.destination_model, f.requester, f.status_code, f.usage_source,
      CASE WHEN f.match_method = 'unattributed' OR f.raw_user = '' THEN f.requester ELSE f.raw_user END AS end_user,
      CASE WHEN f.match_method = 'unattributed' THEN '' ELSE f.r_agent_endpoint END AS agent_endpoint,
      CASE WHEN f.match_method = 'unattributed' THEN '' ELSE f.r_trace_id END AS trace_id,
      CASE WHEN f.match_method = 'unattributed' THEN '' ELSE f.r_agent_request_id END AS agent_request_id,
      CASE WHEN f.match_method = 'unattributed' THEN '' ELSE f.r_session END AS session,
      f.match_method, f.match_confidence, f.candidates, f.weight, f.reason, f.pos,
      f.input_tokens AS input_tokens_whole,
      CAST((f.input_tokens * f.share_num - (f.input_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS input_tokens_floor,
      (f.input_tokens * f.share_num) % f.parts AS input_tokens_rem,
      f.output_tokens AS output_tokens_whole,
      CAST((f.output_tokens * f.share_num - (f.output_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS output_tokens_floor,
      (f.output_tokens * f.share_num) % f.parts AS output_tokens_rem,
      f.total_tokens AS total_tokens_whole,
      CAST((f.total_tokens * f.share_num - (f.total_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS total_tokens_floor,
      (f.total_tokens * f.share_num) % f.parts AS total_tokens_rem,
      f.cache_read_input_tokens AS cache_read_input_tokens_whole,
      CAST((f.cache_read_input_tokens * f.share_num - (f.cache_read_input_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS cache_read_input_tokens_floor,
      (f.cache_read_input_tokens * f.share_num) % f.parts AS cache_read_input_tokens_rem,
      f.cache_creation_input_tokens AS cache_creation_input_tokens_whole,
      CAST((f.cache_creation_input_tokens * f.share_num - (f.cache_creation_input_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS cache_creation_input_tokens_floor,
      (f.cache_creation_input_tokens * f.share_num) % f.parts AS cache_creation_input_tokens_rem,
      f.output_reasoning_tokens AS output_reasoning_tokens_whole,
      CAST((f.output_reasoning_tokens * f.share_num - (f.output_reasoning_tokens * f.share_num) % f.parts) / f.parts AS BIGINT) AS output_reasoning_tokens_floor,
      (f.output_reasoning_tokens * f.share_num) % f.parts AS output_reasoning_tokens_rem
    FROM final_rows f
  ),
  shaped AS (
    SELECT
      f.invocation_id, f.request_id, f.event_time, f.account_id, f.workspace_id, f.endpoint_id, f.endpoint_name,
      f.destination_name, f.destination_model, f.requester, f.status_code, f.usage_source,
      f.end_user, f.agent_endpoint, f.trace_id, f.agent_request_id, f.session,
      f.match_method, f.match_confidence, f.candidates, f.weight, f.reason,
      f.input_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.input_tokens_rem DESC, f.pos)
        <= f.input_tokens_whole - sum(f.input_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS input_tokens,
      f.output_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.output_tokens_rem DESC, f.pos)
        <= f.output_tokens_whole - sum(f.output_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS output_tokens,
      f.total_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.total_tokens_rem DESC, f.pos)
        <= f.total_tokens_whole - sum(f.total_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS total_tokens,
      f.cache_read_input_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.cache_read_input_tokens_rem DESC, f.pos)
        <= f.cache_read_input_tokens_whole - sum(f.cache_read_input_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS cache_read_input_tokens,
      f.cache_creation_input_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.cache_creation_input_tokens_rem DESC, f.pos)
        <= f.cache_creation_input_tokens_whole - sum(f.cache_creation_input_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS cache_creation_input_tokens,
      f.output_reasoning_tokens_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.output_reasoning_tokens_rem DESC, f.pos)
        <= f.output_reasoning_tokens_whole - sum(f.output_reasoning_tokens_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS output_reasoning_tokens
    FROM floored f
  ),
  -- Team and cost center from the org directory; cost from the price list
  -- version in force at event_time, looked up by destination_model, then by
  -- destination_name (enrich.PriceList.Cost).
  priced AS (
    SELECT s.*,
      coalesce(o.team, 'unassigned') AS team,
      coalesce(o.cost_center, '') AS cost_center,
      CASE
        WHEN pm.version IS NOT NULL THEN (CAST(greatest(s.input_tokens - s.cache_read_input_tokens - s.cache_creation_input_tokens, 0) AS DOUBLE) * pm.input_per_m + CAST(s.output_tokens AS DOUBLE) * pm.output_per_m
         + CAST(s.cache_read_input_tokens AS DOUBLE) * pm.cache_read_per_m + CAST(s.cache_creation_input_tokens AS DOUBLE) * pm.cache_create_per_m) / 1e6
        WHEN pn.version IS NOT NULL THEN (CAST(greatest(s.input_tokens - s.cache_read_input_tokens - s.cache_creation_input_tokens, 0) AS DOUBLE) * pn.input_per_m + CAST(s.output_tokens AS DOUBLE) * pn.output_per_m
         + CAST(s.cache_read_input_tokens AS DOUBLE) * pn.cache_read_per_m + CAST(s.cache_creation_input_tokens AS DOUBLE) * pn.cache_create_per_m) / 1e6
        ELSE 0e0
      END AS cost_usd,
      coalesce(pm.version, pn.version, 'unpriced') AS price_list_version
    FROM shaped s
    LEFT JOIN `main`.`obolus`.`price_list` pm
      ON pm.digest = :price_digest AND pm.lookup_key = lower(trim(s.destination_model))
     AND (pm.valid_from IS NULL OR s.event_time >= pm.valid_from) AND (pm.valid_to IS NULL OR s.event_time < pm.valid_to)
    LEFT JOIN `main`.`obolus`.`price_list` pn
      ON pn.digest = :price_digest AND pn.lookup_key = lower(trim(s.destination_name))
     AND (pn.valid_from IS NULL OR s.event_time >= pn.valid_from) AND (pn.valid_to IS NULL OR s.event_time < pn.valid_to)
    LEFT JOIN `main`.`obolus`.`org_directory` o
      ON o.digest = :org_digest AND o.user_key = lower(trim(s.end_user))
  ),
  incoming_rows AS (
    SELECT
      x.invocation_id, x.request_id, x.event_time, CAST(x.event_time AS DATE) AS event_date,
      x.account_id, x.workspace_id, x.endpoint_id, x.endpoint_name, x.destination_model, x.requester,
      CAST(x.status_code AS INT) AS status_code, x.usage_source,
      x.end_user AS end_user, x.team AS team, x.cost_center AS cost_center,
      x.agent_endpoint AS agent_endpoint, x.trace_id AS trace_id, x.agent_request_id AS agent_request_id,
      x.session AS session, x.match_method AS match_method, x.match_confidence AS match_confidence,
      CAST(x.candidates AS INT) AS candidates, x.weight, x.reason AS reason,
      x.input_tokens, x.output_tokens, x.total_tokens, x.cache_read_input_tokens,
      x.cache_creation_input_tokens, x.output_reasoning_tokens,
      x.cost_usd, x.price_list_version,
      :version AS version, :run_id AS run_id, :processed_at AS processed_at
    FROM priced x
  ),
  -- Delta rejects a MERGE where two source rows match one target row: keep
  -- one row per key (a staged batch sent twice after a dropped connection
  -- repeats its rows).
  incoming AS (
    SELECT invocation_id, request_id, event_time, event_date, account_id, workspace_id, endpoint_id, endpoint_name, destination_model, requester, status_code, usage_source, end_user, team, cost_center, agent_endpoint, trace_id, agent_request_id, session, match_method, match_confidence, candidates, weight, reason, input_tokens, output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens, output_reasoning_tokens, cost_usd, price_list_version, version, run_id, processed_at FROM (
      SELECT r.*, row_number() OVER (PARTITION BY r.invocation_id, r.end_user ORDER BY r.version DESC) AS key_rank
      FROM incoming_rows r
    ) k
    WHERE k.key_rank = 1
  ),
  incoming_invocations AS (
    SELECT invocation_id, max(version) AS version FROM incoming GROUP BY invocation_id
  ),
  -- Invocations the target holds at a higher version keep their stored rows.
  stale AS (
    SELECT DISTINCT i.invocation_id
    FROM incoming_invocations i
    JOIN `main`.`obolus`.`attribution` a ON a.invocation_id = i.invocation_id
    WHERE a.event_date BETWEEN :date_from AND :date_to AND a.version > i.version
  ),
  upserts AS (
    SELECT 'upsert' AS merge_op, n.invocation_id, n.request_id, n.event_time, n.event_date, n.account_id, n.workspace_id, n.endpoint_id, n.endpoint_name, n.destination_model, n.requester, n.status_code, n.usage_source, n.end_user, n.team, n.cost_center, n.agent_endpoint, n.trace_id, n.agent_request_id, n.session, n.match_method, n.match_confidence, n.candidates, n.weight, n.reason, n.input_tokens, n.output_tokens, n.total_tokens, n.cache_read_input_tokens, n.cache_creation_input_tokens, n.output_reasoning_tokens, n.cost_usd, n.price_list_version, n.version, n.run_id, n.processed_at
    FROM incoming n
    WHERE NOT EXISTS (SELECT 1 FROM stale x WHERE x.invocation_id = n.invocation_id)
  ),
  -- Stored rows of the replaced invocations and of the window that the
  -- incoming rows do not carry again.
  deletes AS (
    SELECT 'delete' AS merge_op, a.invocation_id, a.request_id, a.event_time, a.event_date, a.account_id, a.workspace_id, a.endpoint_id, a.endpoint_name, a.destination_model, a.requester, a.status_code, a.usage_source, a.end_user, a.team, a.cost_center, a.agent_endpoint, a.trace_id, a.agent_request_id, a.session, a.match_method, a.match_confidence, a.candidates, a.weight, a.reason, a.input_tokens, a.output_tokens, a.total_tokens, a.cache_read_input_tokens, a.cache_creation_input_tokens, a.output_reasoning_tokens, a.cost_usd, a.price_list_version, a.version, a.run_id, a.processed_at
    FROM `main`.`obolus`.`attribution` a
    WHERE a.event_date BETWEEN :date_from AND :date_to
      AND (EXISTS (SELECT 1 FROM incoming_invocations i WHERE i.invocation_id = a.invocation_id)
           OR (a.event_time >= :window_from AND a.event_time < :window_to))
      AND NOT EXISTS (SELECT 1 FROM stale x WHERE x.invocation_id = a.invocation_id)
      AND NOT EXISTS (SELECT 1 FROM upserts u WHERE u.invocation_id = a.invocation_id AND u.end_user = a.end_user)
  )
  SELECT * FROM upserts
  UNION ALL
  SELECT * FROM deletes
) AS s
ON t.invocation_id = s.invocation_id AND t.end_user = s.end_user
   AND t.event_date BETWEEN :date_from AND :date_to
WHEN MATCHED AND s.merge_op = 'delete' THEN DELETE
WHEN MATCHED THEN UPDATE SET invocation_id = s.invocation_id, request_id = s.request_id, event_time = s.event_time, event_date = s.event_date, account_id = s.account_id, workspace_id = s.workspace_id, endpoint_id = s.endpoint_id, endpoint_name = s.endpoint_name, destination_model = s.destination_model, requester = s.requester, status_code = s.status_code, usage_source = s.usage_source, end_user = s.end_user, team = s.team, cost_center = s.cost_center, agent_endpoint = s.agent_endpoint, trace_id = s.trace_id, agent_request_id = s.agent_request_id, session = s.session, match_method = s.match_method, match_confidence = s.match_confidence, candidates = s.candidates, weight = s.weight, reason = s.reason, input_tokens = s.input_tokens, output_tokens = s.output_tokens, total_tokens = s.total_tokens, cache_read_input_tokens = s.cache_read_input_tokens, cache_creation_input_tokens = s.cache_creation_input_tokens, output_reasoning_tokens = s.output_reasoning_tokens, cost_usd = s.cost_usd, price_list_version = s.price_list_version, version = s.version, run_id = s.run_id, processed_at = s.processed_at
WHEN NOT MATCHED AND s.merge_op = 'upsert' THEN INSERT (invocation_id, request_id, event_time, event_date, account_id, workspace_id, endpoint_id, endpoint_name, destination_model, requester, status_code, usage_source, end_user, team, cost_center, agent_endpoint, trace_id, agent_request_id, session, match_method, match_confidence, candidates, weight, reason, input_tokens, output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens, output_reasoning_tokens, cost_usd, price_list_version, version, run_id, processed_at) VALUES (s.invocation_id, s.request_id, s.event_time, s.event_date, s.account_id, s.workspace_id, s.endpoint_id, s.endpoint_name, s.destination_model, s.requester, s.status_code, s.usage_source, s.end_user, s.team, s.cost_center, s.agent_endpoint, s.trace_id, s.agent_request_id, s.session, s.match_method, s.match_confidence, s.candidates, s.weight, s.reason, s.input_tokens, s.output_tokens, s.total_tokens, s.cache_read_input_tokens, s.cache_creation_input_tokens, s.output_reasoning_tokens, s.cost_usd, s.price_list_version, s.version, s.run_id, s.processed_at)
