package schemas

import "time"

// Agent request sources.
const (
	SourcePayload = "payload"
	SourceTrace   = "mlflow_trace"
)

// SourceRank orders agent-log sources by how far they are trusted when two
// of them describe one request and disagree: the payload row first, because
// the serving layer writes its times and its requester, then the MLflow
// trace, which the agent's own code writes, then anything else. Lower is
// trusted more. An OpenTelemetry span is the same MLflow trace in another
// layout (Unity Catalog span tables), so it ranks with the trace.
func SourceRank(source string) int {
	switch source {
	case SourcePayload:
		return 0
	case SourceTrace, SourceOTelSpan:
		return 1
	default:
		return 2
	}
}

// MLflow trace metadata keys that obolus reads.
const (
	TraceUserKey     = "mlflow.trace.user"
	TraceSessionKey  = "mlflow.trace.session"
	TraceEndpointKey = "mlflow.databricks.modelServingEndpointName"
)

// AgentRequest is one end-user request to an agent, normalised from a payload
// table row or an MLflow trace. One AgentRequest fans out to many gateway calls.
type AgentRequest struct {
	// AgentRequestID is the serving request's databricks_request_id. For an
	// MLflow trace logged by an agent on Model Serving it is the trace's
	// client_request_id, which MLflow sets to that same id.
	AgentRequestID   string    `json:"agent_request_id"`
	TraceID          string    `json:"trace_id"`
	ClientRequestID  string    `json:"client_request_id"`
	EndUser          string    `json:"end_user"`
	Session          string    `json:"session"`
	AgentEndpoint    string    `json:"agent_endpoint"`
	ServicePrincipal string    `json:"service_principal"`
	StartTime        time.Time `json:"start_time"`
	DurationMS       int64     `json:"duration_ms"`
	Status           string    `json:"status"`
	Source           string    `json:"source"`
	// GatewayLinkID marks a record that stands for no request: an AI
	// Gateway span of the unified trace table, which says only that the
	// usage row whose link column (MatchConfig.GatewayLinkColumn) holds this
	// value was made within trace TraceID. It names no user.
	GatewayLinkID string `json:"gateway_link_id,omitempty"`
}

// End is when the agent finished the request.
func (r AgentRequest) End() time.Time {
	return r.StartTime.Add(time.Duration(r.DurationMS) * time.Millisecond)
}

// Key identifies the request for deduplication: the first id it has.
func (r AgentRequest) Key() string {
	switch {
	case r.AgentRequestID != "":
		return r.AgentRequestID
	case r.TraceID != "":
		return r.TraceID
	default:
		return r.ClientRequestID
	}
}

// PayloadRow is one row of an agent endpoint's inference (payload) table.
// On the agent endpoint, requester is the end user who called the agent.
type PayloadRow struct {
	DatabricksRequestID string    `json:"databricks_request_id"`
	ClientRequestID     string    `json:"client_request_id"`
	RequestTime         time.Time `json:"request_time"`
	StatusCode          int32     `json:"status_code"`
	ExecutionDurationMS int64     `json:"execution_duration_ms"`
	Requester           string    `json:"requester"`
	ServedEntityID      string    `json:"served_entity_id"`
}

// AgentRequest normalises a payload row. The payload table names neither the
// agent endpoint nor the service principal it runs as: both come from the
// configuration of the source the row was read from.
func (p PayloadRow) AgentRequest(agentEndpoint, servicePrincipal string) AgentRequest {
	return AgentRequest{
		AgentRequestID:   p.DatabricksRequestID,
		ClientRequestID:  p.ClientRequestID,
		EndUser:          p.Requester,
		AgentEndpoint:    agentEndpoint,
		ServicePrincipal: servicePrincipal,
		StartTime:        p.RequestTime,
		DurationMS:       p.ExecutionDurationMS,
		Status:           httpStatusText(p.StatusCode),
		Source:           SourcePayload,
	}
}

// TraceRow is one MLflow 3 TraceInfo as stored in a trace table.
type TraceRow struct {
	TraceID             string            `json:"trace_id"`
	ClientRequestID     string            `json:"client_request_id"`
	RequestTime         time.Time         `json:"request_time"`
	ExecutionDurationMS int64             `json:"execution_duration_ms"`
	State               string            `json:"state"`
	TraceMetadata       map[string]string `json:"trace_metadata,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
}

// AgentRequest normalises a trace. The end user is mlflow.trace.user (never
// the mlflow.user tag, which names who created the trace); the agent endpoint
// comes from trace metadata unless the source configures one.
func (t TraceRow) AgentRequest(agentEndpoint, servicePrincipal string) AgentRequest {
	if agentEndpoint == "" {
		agentEndpoint = t.TraceMetadata[TraceEndpointKey]
	}
	return AgentRequest{
		AgentRequestID:   t.ClientRequestID,
		TraceID:          t.TraceID,
		ClientRequestID:  t.ClientRequestID,
		EndUser:          t.TraceMetadata[TraceUserKey],
		Session:          t.TraceMetadata[TraceSessionKey],
		AgentEndpoint:    agentEndpoint,
		ServicePrincipal: servicePrincipal,
		StartTime:        t.RequestTime,
		DurationMS:       t.ExecutionDurationMS,
		Status:           t.State,
		Source:           SourceTrace,
	}
}

func httpStatusText(code int32) string {
	switch {
	case code == 0:
		return ""
	case code < 400:
		return "OK"
	default:
		return "ERROR"
	}
}
