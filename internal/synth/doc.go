// Package synth generates realistic AI Gateway workloads with ground truth:
// the input files obolus reads, and who really made every call, for scoring.
//
// # Output layout
//
// Generate writes into an empty directory (JSON field names are the
// Databricks column names, timestamps RFC 3339 in UTC):
//
//	usage/ai_gateway_usage-NNN.<ext>  system.ai_gateway.usage rows (schemas.UsageEvent, plus
//	                                  time_to_first_byte_ms and response_content_type)
//	usage/endpoint_usage-000.<ext>    system.serving.endpoint_usage rows (schemas.LegacyUsage)
//	agents/<endpoint>_payload.<ext>   payload tables (schemas.PayloadRow), on-time requests
//	agents/<endpoint>_traces.<ext>    MLflow traces (schemas.TraceRow), on-time requests
//	agents_late/…                     the same for requests whose log arrives late
//	org.csv                           end_user,team,cost_center; a few active users left out
//	ground_truth.jsonl                one line per distinct invocation_id
//	obolus.yaml                       batch job configuration, paths relative to itself
//
// <ext> is jsonl, csv (header row; maps and structs as JSON text) or parquet
// (written through DuckDB with TIMESTAMP, MAP, STRUCT, BIGINT and INTEGER
// columns). The same seed and configuration give byte-identical files.
//
// # The workload
//
// Users (Zipf-like activity: a few heavy users) hold sessions of 1–15
// consecutive requests with one agent; sessions start along a diurnal curve
// (European and American business peaks, quiet nights, quieter weekends).
// Each agent has its own service principal (the requester of its gateway
// calls), serving endpoint, model mix, request durations (log-normal, from a
// few seconds to a few minutes) and logging: payload table, MLflow traces,
// or both for the same requests. A request fans out into 1–20 gateway calls
// spread over its duration; 4% of requests make one more call 0.2–6 s after
// answering, outside the logged request. Calls are streamed or not, read
// the prompt cache in later steps, spend reasoning tokens on reasoning
// models; embeddings have no output. Retried calls fail first with 429 or
// 503 and no tokens, then succeed under a new invocation_id and the same
// request_id. Duplicated rows repeat an invocation byte for byte, in the
// same file or the next. Each agent's clock is off by a fixed offset plus
// per-request jitter, within MaxSkew.
//
// Hot agents (HotServicePrincipals, default 1) share 35% of requests (10%
// more per additional hot agent, at most 70%) and run longer requests with
// more calls: many requests of one service principal overlap, so a time
// window is genuinely ambiguous there.
//
// # Tagging
//
// A tagged call carries one id in request_tags. 5% of tagged calls name the
// end user ({"end_user": email}); the rest follow the agent's logging:
// payload-only agents send {"agent_request_id": databricks_request_id},
// traced agents send {"mlflow_trace_id": "tr-<hex>"} (50%),
// {"traceparent": "00-<hex>-<span>-01"} (30%) or agent_request_id (20%),
// agents with both logs 35/25/40. Legacy calls carry the agent request id in
// client_request_id (and end_user in usage_context). Some calls also carry
// {"project", "team"} tags that name no user; trace tags carry mlflow.user,
// the agent's developer, which is not the end user either.
//
// Which calls are untagged is not uniform: an agent's untagged share is
// proportional to 1/crowding², crowding being how many of its requests run
// at once, scaled so that TaggedShare of all calls are tagged. Big
// production agents propagate ids; small internal tools often do not.
// Overall the defaults give this tag mix among tagged calls: agent_request_id
// 60%, mlflow_trace_id 18%, traceparent 12%, end_user 5%, legacy
// client_request_id 5%.
//
// # What the defaults make possible
//
// With the defaults (seeds 1, 2, 3, 7), an engine that follows ids and
// otherwise accepts a time window (±2 s) only when it holds exactly one
// request of the service principal reaches recall 0.965–0.969 and precision
// 0.9999 once every agent log has arrived, and about 0.94 / 0.999 when it
// reads agents/ only. 64% of all calls see more than one request in their
// window (about 90% for the hot agent); of the untagged calls, which sit
// mostly on quieter agents, 15–17% are ambiguous and 0.2% have no candidate.
// TestDefaultsAreAttainable checks this with a brute-force reference
// matcher and logs the figures per agent.
package synth
