package synth

// column is one output column: its Databricks name and the DuckDB type it is
// written with in Parquet. JSON and CSV writers emit fields in this order.
type column struct{ name, typ string }

const (
	tVarchar   = "VARCHAR"
	tInt       = "INTEGER"
	tBigint    = "BIGINT"
	tBool      = "BOOLEAN"
	tTimestamp = "TIMESTAMP"
	tMap       = "MAP(VARCHAR, VARCHAR)"
	tTokens    = "STRUCT(cache_read_input_tokens BIGINT, cache_creation_input_tokens BIGINT, output_reasoning_tokens BIGINT)"
)

// usageColumns are system.ai_gateway.usage's columns as schemas.UsageEvent
// holds them, plus two the real table has and the engine does not read:
// time_to_first_byte_ms and response_content_type (text/event-stream marks a
// streamed response).
var usageColumns = []column{
	{"invocation_id", tVarchar},
	{"request_id", tVarchar},
	{"account_id", tVarchar},
	{"workspace_id", tVarchar},
	{"schema_version", tInt},
	{"event_time", tTimestamp},
	{"endpoint_id", tVarchar},
	{"endpoint_name", tVarchar},
	{"endpoint_tags", tMap},
	{"destination_type", tVarchar},
	{"destination_name", tVarchar},
	{"destination_id", tVarchar},
	{"destination_model", tVarchar},
	{"requester", tVarchar},
	{"requester_type", tVarchar},
	{"api_type", tVarchar},
	{"user_agent", tVarchar},
	{"request_tags", tMap},
	{"input_tokens", tBigint},
	{"output_tokens", tBigint},
	{"total_tokens", tBigint},
	{"token_details", tTokens},
	{"status_code", tInt},
	{"latency_ms", tBigint},
	{"time_to_first_byte_ms", tBigint},
	{"response_content_type", tVarchar},
}

// legacyColumns are system.serving.endpoint_usage's (schemas.LegacyUsage).
var legacyColumns = []column{
	{"workspace_id", tVarchar},
	{"account_id", tVarchar},
	{"client_request_id", tVarchar},
	{"databricks_request_id", tVarchar},
	{"requester", tVarchar},
	{"status_code", tInt},
	{"request_time", tTimestamp},
	{"input_token_count", tBigint},
	{"output_token_count", tBigint},
	{"input_character_count", tBigint},
	{"output_character_count", tBigint},
	{"usage_context", tMap},
	{"request_streaming", tBool},
	{"served_entity_id", tVarchar},
}

// payloadColumns are an agent payload table's (schemas.PayloadRow).
var payloadColumns = []column{
	{"databricks_request_id", tVarchar},
	{"client_request_id", tVarchar},
	{"request_time", tTimestamp},
	{"status_code", tInt},
	{"execution_duration_ms", tBigint},
	{"requester", tVarchar},
	{"served_entity_id", tVarchar},
}

// traceColumns are an MLflow trace table's (schemas.TraceRow).
var traceColumns = []column{
	{"trace_id", tVarchar},
	{"client_request_id", tVarchar},
	{"request_time", tTimestamp},
	{"execution_duration_ms", tBigint},
	{"state", tVarchar},
	{"trace_metadata", tMap},
	{"tags", tMap},
}
