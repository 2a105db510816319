package enrich

import "testing"

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
