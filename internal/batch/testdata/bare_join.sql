-- The hand-written DuckDB join the batch benchmark measures obolus against:
-- the same inputs, the same rules (ids first, then a unique time-window
-- candidate of the same service principal within ±2 s), one table out.
-- {{PAYLOAD}}, {{TRACES}} and {{USAGE}} are replaced by file lists, and
-- {{SPMAP}} by a VALUES list of (file, agent_endpoint, service_principal).
CREATE OR REPLACE TEMP TABLE spmap(filename VARCHAR, agent_endpoint VARCHAR, sp VARCHAR);
INSERT INTO spmap VALUES {{SPMAP}};

CREATE OR REPLACE TEMP TABLE agent AS
WITH raw AS (
    SELECT p.databricks_request_id AS req_id, NULL::VARCHAR AS trace_hex, p.requester AS end_user,
           p.request_time AS start_t, p.request_time + to_milliseconds(p.execution_duration_ms) AS end_t, m.sp
    FROM read_parquet({{PAYLOAD}}, filename = true) p JOIN spmap m USING (filename)
    UNION ALL
    SELECT t.client_request_id, lower(regexp_replace(t.trace_id, '^tr-', '')), t.trace_metadata['mlflow.trace.user'],
           t.request_time, t.request_time + to_milliseconds(t.execution_duration_ms), m.sp
    FROM read_parquet({{TRACES}}, filename = true) t JOIN spmap m USING (filename)
)
SELECT req_id, max(trace_hex) AS trace_hex, max(end_user) AS end_user, min(start_t) AS start_t, max(end_t) AS end_t, any_value(sp) AS sp
FROM raw GROUP BY req_id;

CREATE OR REPLACE TEMP TABLE u AS
SELECT DISTINCT ON (invocation_id)
       invocation_id, event_time, requester, destination_model, input_tokens, output_tokens, total_tokens,
       request_tags['end_user'] AS tag_user,
       coalesce(lower(regexp_replace(coalesce(request_tags['mlflow_trace_id'], request_tags['trace_id']), '^tr-', '')),
                split_part(request_tags['traceparent'], '-', 2)) AS tag_trace,
       coalesce(request_tags['agent_request_id'], request_tags['databricks_request_id'], request_tags['client_request_id']) AS tag_req
FROM read_parquet({{USAGE}})
ORDER BY invocation_id, event_time;

-- Each agent request under every minute its ±2 s window touches: the
-- time-window join below is then an equality join on (service principal,
-- minute) plus a range filter, which stays linear for a busy principal,
-- where a join on the principal alone compares every call with every request.
CREATE OR REPLACE TEMP TABLE agent_minutes AS
SELECT req_id, end_user, start_t, end_t, sp,
       unnest(range(epoch(start_t - INTERVAL 2 SECOND)::BIGINT // 60, epoch(end_t + INTERVAL 2 SECOND)::BIGINT // 60 + 1)) AS minute
FROM agent;

CREATE OR REPLACE TABLE bare_attribution AS
WITH by_id AS (
    SELECT u.invocation_id,
           coalesce(u.tag_user, tj.end_user, rj.end_user) AS end_user,
           CASE WHEN u.tag_user IS NOT NULL THEN 'tag_user' WHEN tj.req_id IS NOT NULL THEN 'trace_id'
                WHEN rj.req_id IS NOT NULL THEN 'request_id' END AS method,
           (u.tag_trace IS NOT NULL OR u.tag_req IS NOT NULL) AS has_id
    FROM u
    LEFT JOIN agent tj ON tj.trace_hex = u.tag_trace
    LEFT JOIN agent rj ON rj.req_id = u.tag_req
), win AS (
    SELECT u.invocation_id, count(*) AS candidates, any_value(a.end_user) AS end_user
    FROM u JOIN by_id USING (invocation_id)
    JOIN agent_minutes a ON a.sp = u.requester
                AND a.minute = epoch(u.event_time)::BIGINT // 60
                AND u.event_time >= a.start_t - INTERVAL 2 SECOND
                AND u.event_time <= a.end_t + INTERVAL 2 SECOND
    WHERE by_id.method IS NULL AND NOT by_id.has_id
    GROUP BY u.invocation_id
)
SELECT u.invocation_id, u.event_time, u.requester, u.destination_model, u.total_tokens,
       CASE WHEN b.method IS NOT NULL THEN b.end_user WHEN w.candidates = 1 THEN w.end_user ELSE u.requester END AS end_user,
       CASE WHEN b.method IS NOT NULL THEN b.method WHEN w.candidates = 1 THEN 'time_window' ELSE 'unattributed' END AS match_method
FROM u JOIN by_id b USING (invocation_id) LEFT JOIN win w USING (invocation_id);
