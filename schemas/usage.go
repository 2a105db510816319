package schemas

import "time"

// Usage sources: which Databricks table a UsageEvent was read from.
const (
	SourceAIGateway       = "system.ai_gateway.usage"
	SourceServingEndpoint = "system.serving.endpoint_usage"
)

// TokenDetails mirrors the token_details struct of system.ai_gateway.usage.
type TokenDetails struct {
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	OutputReasoningTokens    int64 `json:"output_reasoning_tokens"`
}

// UsageEvent is one gateway invocation: one row of system.ai_gateway.usage, or
// one row of the legacy system.serving.endpoint_usage mapped onto the same
// fields (see LegacyUsage). Field and JSON names are the Databricks column names.
// It carries only the columns attribution reads: endpoint_tags,
// destination_type, destination_id, requester_type, api_type and user_agent
// are left out, so no reader decodes them and a bad value in one cannot cost
// a row its attribution.
//
// Token counts that Databricks reports as NULL are held as 0: obolus sums
// tokens, and a NULL count contributes nothing to any sum.
type UsageEvent struct {
	// InvocationID is the row key. request_id can repeat across invocations
	// (multi-turn agent calls, guardrail checks), invocation_id does not.
	InvocationID     string            `json:"invocation_id"`
	RequestID        string            `json:"request_id"`
	AccountID        string            `json:"account_id"`
	WorkspaceID      string            `json:"workspace_id"`
	SchemaVersion    int32             `json:"schema_version"`
	EventTime        time.Time         `json:"event_time"`
	EndpointID       string            `json:"endpoint_id"`
	EndpointName     string            `json:"endpoint_name"`
	DestinationName  string            `json:"destination_name"`
	DestinationModel string            `json:"destination_model"`
	Requester        string            `json:"requester"`
	RequestTags      map[string]string `json:"request_tags,omitempty"`
	InputTokens      int64             `json:"input_tokens"`
	OutputTokens     int64             `json:"output_tokens"`
	TotalTokens      int64             `json:"total_tokens"`
	TokenDetails     TokenDetails      `json:"token_details"`
	StatusCode       int32             `json:"status_code"`
	LatencyMS        int64             `json:"latency_ms"`

	// Source is the table the row came from (SourceAIGateway or SourceServingEndpoint).
	Source string `json:"-"`
}

// LegacyUsage is one row of system.serving.endpoint_usage, the table that
// /serving-endpoints/* traffic feeds.
type LegacyUsage struct {
	WorkspaceID          string            `json:"workspace_id"`
	AccountID            string            `json:"account_id"`
	ClientRequestID      string            `json:"client_request_id"`
	DatabricksRequestID  string            `json:"databricks_request_id"`
	Requester            string            `json:"requester"`
	StatusCode           int32             `json:"status_code"`
	RequestTime          time.Time         `json:"request_time"`
	InputTokenCount      int64             `json:"input_token_count"`
	OutputTokenCount     int64             `json:"output_token_count"`
	InputCharacterCount  int64             `json:"input_character_count"`
	OutputCharacterCount int64             `json:"output_character_count"`
	UsageContext         map[string]string `json:"usage_context,omitempty"`
	RequestStreaming     bool              `json:"request_streaming"`
	ServedEntityID       string            `json:"served_entity_id"`
}

// LegacyClientRequestIDTag is the request tag under which a legacy row's
// client_request_id is exposed to the matcher.
const LegacyClientRequestIDTag = "client_request_id"

// UsageEvent maps a legacy row onto the canonical record:
//
//	databricks_request_id → invocation_id and request_id (it is unique per call)
//	request_time          → event_time
//	input/output_token_count → input/output_tokens, total = their sum
//	usage_context         → request_tags, plus client_request_id under LegacyClientRequestIDTag
//	served_entity_id      → endpoint_id and destination_id (join served_entities for names)
func (l LegacyUsage) UsageEvent() UsageEvent {
	tags := make(map[string]string, len(l.UsageContext)+1)
	for k, v := range l.UsageContext {
		tags[k] = v
	}
	if l.ClientRequestID != "" {
		if _, taken := tags[LegacyClientRequestIDTag]; !taken {
			tags[LegacyClientRequestIDTag] = l.ClientRequestID
		}
	}
	return UsageEvent{
		InvocationID: l.DatabricksRequestID,
		RequestID:    l.DatabricksRequestID,
		AccountID:    l.AccountID,
		WorkspaceID:  l.WorkspaceID,
		EventTime:    l.RequestTime,
		EndpointID:   l.ServedEntityID,
		Requester:    l.Requester,
		RequestTags:  tags,
		InputTokens:  l.InputTokenCount,
		OutputTokens: l.OutputTokenCount,
		TotalTokens:  l.InputTokenCount + l.OutputTokenCount,
		StatusCode:   l.StatusCode,
		Source:       SourceServingEndpoint,
	}
}
