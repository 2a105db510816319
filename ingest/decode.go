package ingest

import (
	"sync"
	"time"

	"github.com/obolus/obolus/schemas"
)

// MaxUsageSchemaVersion is the highest system.ai_gateway.usage schema_version
// obolus knows. The column exists so Databricks can change the event schema;
// a row of a newer version may mean something else by the columns obolus
// reads (token counts, requester), so it is dead-lettered with "unknown
// schema_version N" rather than attributed on a guess. Raise this after
// checking the new version's columns. Versions below 1 are rejected too; a
// row without the column (an export that dropped it) is accepted.
const MaxUsageSchemaVersion = 1

// Decoding rules shared by every decoder, and by the CSV, Parquet and table
// readers (they feed the same field code):
//   - Keys are the Databricks column names; unknown keys are ignored.
//   - Timestamps: RFC 3339, "2006-01-02 15:04:05[.fffffffff]" with an optional
//     zone (none means UTC), or integer epoch milliseconds; always UTC.
//   - Numbers may be JSON numbers or numeric strings. NULL or missing token
//     counts are 0; negative token counts and durations are errors.
//   - Map columns may be a JSON object, a string holding one, or an array of
//     {"key","value"} pairs; non-string values are errors, NULL values dropped.
//   - NULL and "" are the same as a missing column; a required column that is
//     missing is FieldError{Field: column, Reason: "missing"}.
//   - Invalid UTF-8 anywhere in the record is an error.
//   - Errors are *FieldError naming the column.

// usageFields are the columns schemas.UsageEvent carries; the others are
// skipped like any unknown key (checked only for JSON syntax and UTF-8).
var usageFields = newFieldSet(
	required(fStr("invocation_id", func(u *schemas.UsageEvent) *string { return &u.InvocationID })),
	fStr("request_id", func(u *schemas.UsageEvent) *string { return &u.RequestID }),
	fCommon("account_id", func(u *schemas.UsageEvent) *string { return &u.AccountID }),
	fCommon("workspace_id", func(u *schemas.UsageEvent) *string { return &u.WorkspaceID }),
	field[schemas.UsageEvent]{name: "schema_version", set: setSchemaVersion},
	required(fTime("event_time", func(u *schemas.UsageEvent) *time.Time { return &u.EventTime })),
	fCommon("endpoint_id", func(u *schemas.UsageEvent) *string { return &u.EndpointID }),
	fCommon("endpoint_name", func(u *schemas.UsageEvent) *string { return &u.EndpointName }),
	fCommon("destination_name", func(u *schemas.UsageEvent) *string { return &u.DestinationName }),
	fCommon("destination_model", func(u *schemas.UsageEvent) *string { return &u.DestinationModel }),
	required(fCommon("requester", func(u *schemas.UsageEvent) *string { return &u.Requester })),
	fMap("request_tags", func(u *schemas.UsageEvent) *map[string]string { return &u.RequestTags }),
	fCount("input_tokens", func(u *schemas.UsageEvent) *int64 { return &u.InputTokens }),
	fCount("output_tokens", func(u *schemas.UsageEvent) *int64 { return &u.OutputTokens }),
	fCount("total_tokens", func(u *schemas.UsageEvent) *int64 { return &u.TotalTokens }),
	fTokenDetails("token_details", func(u *schemas.UsageEvent) *schemas.TokenDetails { return &u.TokenDetails }),
	fInt32("status_code", func(u *schemas.UsageEvent) *int32 { return &u.StatusCode }),
	fInt("latency_ms", func(u *schemas.UsageEvent) *int64 { return &u.LatencyMS }),
)

func setSchemaVersion(d *decoder, u *schemas.UsageEvent, name string, v *value) error {
	n, err := d.asInt32(name, v)
	if err != nil {
		return err
	}
	if n < 1 || n > MaxUsageSchemaVersion {
		return fieldErr(name, "unknown schema_version %d", n)
	}
	u.SchemaVersion = n
	return nil
}

var legacyFields = newFieldSet(
	fCommon("workspace_id", func(l *schemas.LegacyUsage) *string { return &l.WorkspaceID }),
	fCommon("account_id", func(l *schemas.LegacyUsage) *string { return &l.AccountID }),
	fStr("client_request_id", func(l *schemas.LegacyUsage) *string { return &l.ClientRequestID }),
	required(fStr("databricks_request_id", func(l *schemas.LegacyUsage) *string { return &l.DatabricksRequestID })),
	required(fCommon("requester", func(l *schemas.LegacyUsage) *string { return &l.Requester })),
	fInt32("status_code", func(l *schemas.LegacyUsage) *int32 { return &l.StatusCode }),
	required(fTime("request_time", func(l *schemas.LegacyUsage) *time.Time { return &l.RequestTime })),
	fCount("input_token_count", func(l *schemas.LegacyUsage) *int64 { return &l.InputTokenCount }),
	fCount("output_token_count", func(l *schemas.LegacyUsage) *int64 { return &l.OutputTokenCount }),
	fCount("input_character_count", func(l *schemas.LegacyUsage) *int64 { return &l.InputCharacterCount }),
	fCount("output_character_count", func(l *schemas.LegacyUsage) *int64 { return &l.OutputCharacterCount }),
	fMap("usage_context", func(l *schemas.LegacyUsage) *map[string]string { return &l.UsageContext }),
	fBool("request_streaming", func(l *schemas.LegacyUsage) *bool { return &l.RequestStreaming }),
	fCommon("served_entity_id", func(l *schemas.LegacyUsage) *string { return &l.ServedEntityID }),
)

// servedFields read system.serving.served_entities. external_model_config
// and the other per-type structs are not read: the model comes from
// entity_type and entity_name.
var servedFields = newFieldSet(
	required(fCommon("served_entity_id", func(e *schemas.ServedEntity) *string { return &e.ServedEntityID })),
	fCommon("account_id", func(e *schemas.ServedEntity) *string { return &e.AccountID }),
	fCommon("workspace_id", func(e *schemas.ServedEntity) *string { return &e.WorkspaceID }),
	fCommon("endpoint_name", func(e *schemas.ServedEntity) *string { return &e.EndpointName }),
	fCommon("endpoint_id", func(e *schemas.ServedEntity) *string { return &e.EndpointID }),
	fCommon("served_entity_name", func(e *schemas.ServedEntity) *string { return &e.ServedEntityName }),
	required(fCommon("entity_type", func(e *schemas.ServedEntity) *string { return &e.EntityType })),
	required(fCommon("entity_name", func(e *schemas.ServedEntity) *string { return &e.EntityName })),
	fCommon("entity_version", func(e *schemas.ServedEntity) *string { return &e.EntityVersion }),
	fCommon("task", func(e *schemas.ServedEntity) *string { return &e.Task }),
	required(fTime("change_time", func(e *schemas.ServedEntity) *time.Time { return &e.ChangeTime })),
)

// Payload tables of agents deployed before AI Gateway inference tables used
// timestamp_ms and execution_time_ms; they are read as aliases.
var payloadFields = newFieldSet(
	required(fStr("databricks_request_id", func(p *schemas.PayloadRow) *string { return &p.DatabricksRequestID })),
	fStr("client_request_id", func(p *schemas.PayloadRow) *string { return &p.ClientRequestID }),
	required(fTime("request_time", func(p *schemas.PayloadRow) *time.Time { return &p.RequestTime })),
	fInt32("status_code", func(p *schemas.PayloadRow) *int32 { return &p.StatusCode }),
	fDuration("execution_duration_ms", func(p *schemas.PayloadRow) *int64 { return &p.ExecutionDurationMS }),
	fCommon("requester", func(p *schemas.PayloadRow) *string { return &p.Requester }),
	fCommon("served_entity_id", func(p *schemas.PayloadRow) *string { return &p.ServedEntityID }),
).alias("timestamp_ms", "request_time").alias("execution_time_ms", "execution_duration_ms")

// Trace rows also accept MLflow's V2 names (request_id, request_metadata,
// timestamp_ms, execution_time_ms) and TraceInfo.to_dict's
// execution_duration ("1.25s").
var traceFields = newFieldSet(
	required(fStr("trace_id", func(t *schemas.TraceRow) *string { return &t.TraceID })),
	fStr("client_request_id", func(t *schemas.TraceRow) *string { return &t.ClientRequestID }),
	required(fTime("request_time", func(t *schemas.TraceRow) *time.Time { return &t.RequestTime })),
	fDuration("execution_duration_ms", func(t *schemas.TraceRow) *int64 { return &t.ExecutionDurationMS }),
	fCommon("state", func(t *schemas.TraceRow) *string { return &t.State }),
	fMap("trace_metadata", func(t *schemas.TraceRow) *map[string]string { return &t.TraceMetadata }),
	fMap("tags", func(t *schemas.TraceRow) *map[string]string { return &t.Tags }),
).alias("request_id", "trace_id").
	alias("request_metadata", "trace_metadata").
	alias("timestamp_ms", "request_time").
	alias("execution_time_ms", "execution_duration_ms").
	alias("execution_duration", "execution_duration_ms")

// decoders holds decoders for the Decode functions, which streaming calls
// once per message: pooling keeps their scratch space and intern cache.
var decoders = sync.Pool{New: func() any { return &decoder{intern: new(internCache)} }}

// DecodeUsage decodes one system.ai_gateway.usage row given as a JSON object
// and sets Source to schemas.SourceAIGateway. Required: invocation_id,
// event_time, requester. Safe for concurrent use.
func DecodeUsage(b []byte) (schemas.UsageEvent, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	return d.usage(b)
}

// DecodeLegacyUsage decodes one system.serving.endpoint_usage row and maps it
// onto the canonical record (see schemas.LegacyUsage.UsageEvent). Required:
// databricks_request_id, request_time, requester.
func DecodeLegacyUsage(b []byte) (schemas.UsageEvent, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	return d.legacyUsage(b)
}

// DecodePayload decodes one agent payload (inference) table row. Required:
// databricks_request_id, request_time.
func DecodePayload(b []byte) (schemas.PayloadRow, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	d.payload = schemas.PayloadRow{}
	if err := decodeJSON(d, payloadFields, b, &d.payload); err != nil {
		return schemas.PayloadRow{}, err
	}
	return d.payload, nil
}

// DecodeTrace decodes one MLflow trace (TraceInfo) row. Required: trace_id,
// request_time.
func DecodeTrace(b []byte) (schemas.TraceRow, error) {
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	d.trace = schemas.TraceRow{}
	if err := decodeJSON(d, traceFields, b, &d.trace); err != nil {
		return schemas.TraceRow{}, err
	}
	return d.trace, nil
}

func (d *decoder) usage(b []byte) (schemas.UsageEvent, error) {
	var u schemas.UsageEvent
	if err := decodeJSON(d, usageFields, b, &u); err != nil {
		return schemas.UsageEvent{}, err
	}
	u.Source = schemas.SourceAIGateway
	return u, nil
}

func (d *decoder) legacyUsage(b []byte) (schemas.UsageEvent, error) {
	d.legacy = schemas.LegacyUsage{}
	if err := decodeJSON(d, legacyFields, b, &d.legacy); err != nil {
		return schemas.UsageEvent{}, err
	}
	return d.legacy.UsageEvent(), nil
}
