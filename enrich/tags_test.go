package enrich

import (
	"slices"
	"testing"
)

// TagValue is forgiving by default and exact when asked.
func TestTagValue(t *testing.T) {
	tests := []struct {
		tags  map[string]string
		key   string
		exact bool
		want  string
	}{
		{map[string]string{"trace_id": "a"}, "trace_id", false, "a"},
		{map[string]string{"Trace_Id": "b"}, "trace_id", false, "b"},
		{map[string]string{"Trace_Id": "b"}, "trace_id", true, ""},
		{map[string]string{"TRACE-ID": "c", "trace.id": "d"}, "trace_id", false, "c"},
		{map[string]string{"trace_id": "", "Trace-Id": "e"}, "trace_id", false, "e"},
		{map[string]string{"trace_id": "f", "TRACE_ID": "g"}, "Trace-Id", false, "g"},
		{map[string]string{"traceid": "h"}, "trace_id", false, ""},
		{map[string]string{"ÜSER": "x"}, "üser", false, ""},
	}
	for _, tt := range tests {
		if got := TagValue(tt.tags, tt.key, tt.exact); got != tt.want {
			t.Errorf("TagValue(%v, %q, exact=%v) = %q, want %q", tt.tags, tt.key, tt.exact, got, tt.want)
		}
	}
}

func TestNearTagKeys(t *testing.T) {
	seen := map[string]int64{"trace_id": 50, "Trace_Id": 40, "traceid": 30, "agent_reqest_id": 20, "project": 10, "End-User": 5, "user": 3}
	configured := []string{"end_user", "user", "trace_id", "agent_request_id"}
	got := NearTagKeys(seen, configured, false)
	want := []TagKeyNote{
		{Seen: "Trace_Id", Configured: "trace_id", Rows: 40, SameName: true, Matched: true},
		{Seen: "traceid", Configured: "trace_id", Rows: 30},
		{Seen: "agent_reqest_id", Configured: "agent_request_id", Rows: 20},
		{Seen: "End-User", Configured: "end_user", Rows: 5, SameName: true, Matched: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("NearTagKeys =\n%v\nwant\n%v", got, want)
	}
	for _, n := range NearTagKeys(seen, configured, true) {
		if n.Matched {
			t.Errorf("%v: matched with exact keys", n)
		}
	}
}
