package schemas

import (
	"testing"
	"time"
)

// A gateway span links its usage row to its trace and names nobody, even
// with enduser.id set (the caller the gateway saw: the service principal);
// an agent span naming its own service principal as user names nobody.
func TestSpanAgentRequestGatewayAndServicePrincipal(t *testing.T) {
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	k := DefaultSpanKeys
	for _, tt := range []struct {
		name    string
		span    SpanRow
		sp      string
		ok      bool
		link    string
		user    string
		spanner string
	}{
		{"gateway span", SpanRow{TraceID: "t1", SpanID: "s2", ParentSpanID: "s1", Attributes: map[string]string{"databricks.ai_gateway.request_id": "gw-1", "enduser.id": "sp-1"}},
			"sp-1", true, "gw-1", "", ""},
		{"gateway root span", SpanRow{TraceID: "t9", SpanID: "s9", Attributes: map[string]string{"ai_gateway.request_id": "gw-9", "enduser.id": "sp-1"}},
			"", true, "gw-9", "", ""},
		{"agent root span naming its principal", SpanRow{TraceID: "t1", SpanID: "s1", Attributes: map[string]string{"enduser.id": "sp-1"}},
			"sp-1", true, "", "", "sp-1"},
		{"child span naming its principal", SpanRow{TraceID: "t1", SpanID: "s3", ParentSpanID: "s1", Attributes: map[string]string{"enduser.id": "sp-1"}},
			"sp-1", false, "", "", ""},
		{"agent root span naming a user", SpanRow{TraceID: "t1", SpanID: "s1", Attributes: map[string]string{"enduser.id": "ana@example.com"}},
			"sp-1", true, "", "ana@example.com", "sp-1"},
	} {
		tt.span.StartTime, tt.span.EndTime = start, start.Add(time.Second)
		r, ok := tt.span.AgentRequest("agent", tt.sp, &k)
		if ok != tt.ok || r.GatewayLinkID != tt.link || r.EndUser != tt.user || ok && r.ServicePrincipal != tt.spanner {
			t.Errorf("%s: %+v %v", tt.name, r, ok)
		}
		if tt.link != "" && (r.TraceID != tt.span.TraceID || r.AgentEndpoint != "") {
			t.Errorf("%s: a link names its trace and no agent: %+v", tt.name, r)
		}
	}
}
