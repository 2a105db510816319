package enrich

import (
	"testing"

	"github.com/obolus/obolus/schemas"
)

// A gateway span of the unified trace table links a call that carries no
// id to its agent's trace; the link's trace id may be spelled differently
// from the agent's, and the order records arrive in does not matter.
func TestGatewayLink(t *testing.T) {
	traced := req("r-1", "tracy@example.com", spA, 100, 10)
	traced.TraceID = "tr-" + trHex
	link := func(id, trace string) schemas.AgentRequest {
		return schemas.AgentRequest{TraceID: trace, GatewayLinkID: id, StartTime: t0, Source: schemas.SourceOTelSpan}
	}
	records := []schemas.AgentRequest{
		link("gw-linked", trHex), // the bare W3C form of the agent's trace id
		link("gw-late", "0af7651916cd43dd8448eb211c80319c"),
		traced,
		req("r-2", "other@example.com", spA, 100, 10), // running too: a time window alone would be ambiguous
	}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}} {
		idx := NewIndex()
		for _, i := range order {
			idx.Add(records[i])
		}
		for _, tt := range []struct {
			column, requestID, invocationID string
			method, user, reason            string
		}{
			{LinkRequestID, "gw-linked", "inv-1", schemas.MethodTraceID, "tracy@example.com", ""},
			{LinkInvocationID, "x", "gw-linked", schemas.MethodTraceID, "tracy@example.com", ""},
			{LinkRequestID, "gw-late", "inv-2", schemas.MethodUnattributed, spA, ReasonIDNotFound},
			{"", "gw-linked", "inv-3", schemas.MethodUnattributed, spA, ReasonAmbiguous},
			{LinkRequestID, "gw-unknown", "inv-4", schemas.MethodUnattributed, spA, ReasonAmbiguous},
		} {
			cfg := DefaultMatchConfig()
			cfg.GatewayLinkColumn = tt.column
			e, err := NewEngine(cfg, idx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := event(tt.invocationID, spA, 105, nil)
			ev.RequestID = tt.requestID
			row := e.Attribute(nil, &ev, Run{})[0]
			if row.MatchMethod != tt.method || row.EndUser != tt.user || row.Reason != tt.reason {
				t.Errorf("order %v, column %q, request %s: %s %s %q, want %s %s %q", order, tt.column, tt.requestID,
					row.MatchMethod, row.EndUser, row.Reason, tt.method, tt.user, tt.reason)
			}
		}
		if idx.Len() != 2 || idx.Links() != 2 {
			t.Errorf("index holds %d requests and %d links, want 2 and 2", idx.Len(), idx.Links())
		}
	}
}

func TestMatchConfigValidateGatewayLinkColumn(t *testing.T) {
	c := DefaultMatchConfig()
	c.GatewayLinkColumn = "trace_id"
	if err := c.Validate(); err == nil {
		t.Error("a gateway link column other than request_id or invocation_id accepted")
	}
}
