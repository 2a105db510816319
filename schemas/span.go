package schemas

import (
	"time"
)

// SourceOTelSpan labels agent requests read from OpenTelemetry span rows
// (MLflow 3 traces stored in Unity Catalog, `{prefix}_otel_spans`).
const SourceOTelSpan = "otel_span"

// SpanRow is one OpenTelemetry span as a span table holds it: the v1 layout
// (attributes MAP<STRING,STRING>) and the v2 layout (attributes VARIANT) both
// come down to this. Only the attributes obolus reads are kept (see
// SpanKeys.Wanted): a span's attributes can hold whole prompts.
type SpanRow struct {
	TraceID      string
	SpanID       string
	ParentSpanID string
	Name         string
	Kind         string
	StartTime    time.Time
	EndTime      time.Time
	// StatusCode is status.code: STATUS_CODE_OK, OK, STATUS_CODE_ERROR, ...
	StatusCode string
	Attributes map[string]string
	// ResourceAttributes are resource.attributes.
	ResourceAttributes map[string]string
}

// SpanKeys says which attributes of a span name what. Each list is a
// precedence list: the first key with a non-empty value wins.
type SpanKeys struct {
	// User are the span attributes naming the end user.
	User []string
	// Session are the span attributes naming the session or conversation.
	Session []string
	// RequestID are the span attributes carrying the request id the agent
	// propagates to the gateway (MLflow's client_request_id, which on Model
	// Serving is the serving request's databricks_request_id).
	RequestID []string
	// ServicePrincipal is the resource attribute naming the service
	// principal the agent calls the gateway as; used only when the source
	// configures none. Empty: never read.
	ServicePrincipal string
	// AgentEndpoint is the resource attribute naming the agent (its serving
	// endpoint or app); used only when the source configures none.
	AgentEndpoint string
	// GatewayLink are the span attributes by which an AI Gateway span of the
	// unified trace table names its usage row. A span carrying one is a
	// gateway span: it links that usage row to its trace and stands for no
	// agent request (AgentRequest.GatewayLinkID).
	GatewayLink []string
}

// DefaultSpanKeys are the attribute keys read unless configured otherwise.
// enduser.id, user.id and session.id are OpenTelemetry semantic
// conventions (user.id is also OpenInference's); mlflow.trace.user and
// mlflow.trace.session are MLflow's trace metadata keys, which an exporter
// may copy onto the root span (not confirmed for Unity Catalog span tables);
// langfuse.user.id and langfuse.session.id are what Langfuse's SDKs set.
// None of the request id keys is confirmed to be written by MLflow or
// Databricks onto spans: they are what an agent author sets.
var DefaultSpanKeys = SpanKeys{
	User:             []string{"enduser.id", "user.id", TraceUserKey, "langfuse.user.id"},
	Session:          []string{"session.id", TraceSessionKey, "langfuse.session.id"},
	RequestID:        []string{"client_request_id", "mlflow.trace.client_request_id", "databricks_request_id"},
	ServicePrincipal: "obolus.service_principal",
	AgentEndpoint:    "service.name",
	// Not confirmed: which attribute of a gateway span names the usage row.
	GatewayLink: []string{"databricks.ai_gateway.request_id", "ai_gateway.request_id", "gen_ai.request.id"},
}

// Wanted reports whether the attribute key is one a SpanRow keeps.
func (k *SpanKeys) Wanted(key string) bool {
	for _, l := range [...][]string{k.User, k.Session, k.RequestID, k.GatewayLink} {
		for _, w := range l {
			if w == key {
				return true
			}
		}
	}
	return false
}

// WantedResource reports whether the resource attribute key is one a
// SpanRow keeps.
func (k *SpanKeys) WantedResource(key string) bool {
	return key != "" && (key == k.ServicePrincipal || key == k.AgentEndpoint)
}

func first(m map[string]string, keys []string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

// IsRoot reports whether the span has no parent: the agent's request.
func (s *SpanRow) IsRoot() bool { return s.ParentSpanID == "" }

// AgentEndpoint is the agent the span belongs to: configured, the source's
// agent endpoint, or when that is empty the resource attribute k names.
func (s *SpanRow) AgentEndpoint(configured string, k *SpanKeys) string {
	if configured == "" && k.AgentEndpoint != "" {
		return s.ResourceAttributes[k.AgentEndpoint]
	}
	return configured
}

// AgentRequest turns a span into the agent request it stands for. Only the
// root span of a trace, or a span that names the end user, stands for one;
// for any other span ok is false and the span is skipped. Two spans of one
// trace (the root and a child naming the user) merge in the index by trace
// id. The service principal and agent endpoint configured for the source win
// over the resource's: a row's resource is written by the agent's own code,
// and must not move its calls to another service principal's timeline.
func (s *SpanRow) AgentRequest(agentEndpoint, servicePrincipal string, k *SpanKeys) (r AgentRequest, ok bool) {
	dur := s.EndTime.Sub(s.StartTime)
	// Rounded up to the millisecond, so the request's interval covers the span.
	ms := int64((dur + time.Millisecond - 1) / time.Millisecond)
	if link := first(s.Attributes, k.GatewayLink); link != "" {
		// A gateway span: its enduser.id, if any, is whoever called the
		// gateway (the agent's service principal), never read as a user.
		return AgentRequest{TraceID: s.TraceID, GatewayLinkID: link, StartTime: s.StartTime, DurationMS: ms, Source: SourceOTelSpan}, true
	}
	agentEndpoint = s.AgentEndpoint(agentEndpoint, k)
	if servicePrincipal == "" && k.ServicePrincipal != "" {
		servicePrincipal = s.ResourceAttributes[k.ServicePrincipal]
	}
	user := first(s.Attributes, k.User)
	if user != "" && user == servicePrincipal {
		// The identity the agent calls as is no end user (a span written by
		// whatever the agent authenticates to).
		user = ""
	}
	if !s.IsRoot() && user == "" {
		return AgentRequest{}, false
	}
	reqID := first(s.Attributes, k.RequestID)
	return AgentRequest{
		AgentRequestID:   reqID,
		TraceID:          s.TraceID,
		ClientRequestID:  reqID,
		EndUser:          user,
		Session:          first(s.Attributes, k.Session),
		AgentEndpoint:    agentEndpoint,
		ServicePrincipal: servicePrincipal,
		StartTime:        s.StartTime,
		DurationMS:       ms,
		Status:           spanStatus(s.StatusCode),
		Source:           SourceOTelSpan,
	}, true
}

// spanStatus maps an OTel status code (STATUS_CODE_OK, OK, 1, ...) onto the
// OK/ERROR of agent requests; unset stays empty.
func spanStatus(code string) string {
	switch code {
	case "STATUS_CODE_OK", "OK", "Ok", "ok", "1":
		return "OK"
	case "STATUS_CODE_ERROR", "ERROR", "Error", "error", "2":
		return "ERROR"
	}
	return ""
}

// OrDefault is k, or DefaultSpanKeys when k is the zero value.
func (k SpanKeys) OrDefault() SpanKeys {
	if k.User == nil && k.Session == nil && k.RequestID == nil && k.ServicePrincipal == "" && k.AgentEndpoint == "" && k.GatewayLink == nil {
		return DefaultSpanKeys
	}
	return k
}
