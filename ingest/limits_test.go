package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rows beyond the limits are dead-lettered naming the field, read through
// the real file reader; the rows around them are kept.
func TestLimitsDeadLetter(t *testing.T) {
	usage := func(extra string) string {
		return `{"invocation_id":"inv-x","event_time":"2026-11-01T10:00:00Z","requester":"sp-1","input_tokens":10,"output_tokens":5,"total_tokens":15` + extra + "}"
	}
	legacy := func(in string) string {
		return `{"databricks_request_id":"req-x","request_time":"2026-11-01T10:00:00Z","requester":"sp-1","input_token_count":` + in + `,"output_token_count":1}`
	}
	payload := func(ms string) string {
		return `{"databricks_request_id":"ar-x","request_time":"2026-11-01T10:00:00Z","requester":"ana@example.com","execution_duration_ms":` + ms + "}"
	}
	trace := func(d string) string {
		return `{"trace_id":"tr-x","request_time":"2026-11-01T10:00:00Z","execution_duration_ms":` + d + `,"trace_metadata":{"mlflow.modelId":"agent"}}`
	}
	tests := []struct {
		name   string
		kind   Kind
		row    string
		limits Limits
		field  string // "" when the row is kept
	}{
		{"usage plausible", KindUsage, usage(""), Limits{}, ""},
		{"usage input near 2^63", KindUsage, strings.Replace(usage(""), `"input_tokens":10`, `"input_tokens":9223372036854775000`, 1), Limits{}, "input_tokens"},
		{"usage total over the bound", KindUsage, strings.Replace(usage(""), `"total_tokens":15`, `"total_tokens":100000001`, 1), Limits{}, "total_tokens"},
		{"usage at the bound", KindUsage, strings.Replace(usage(""), `"total_tokens":15`, `"total_tokens":100000000`, 1), Limits{}, ""},
		{"usage token detail over the bound", KindUsage, usage(`,"token_details":{"cache_read_input_tokens":4611686018427387904}`), Limits{}, "token_details.cache_read_input_tokens"},
		{"usage over a configured bound", KindUsage, usage(""), Limits{MaxTokens: 12}, "total_tokens"},
		{"usage zero time", KindUsage, strings.Replace(usage(""), "2026-11-01T10:00:00Z", "0001-01-01T00:00:00Z", 1), Limits{}, "event_time"},
		{"legacy count near 2^63", KindLegacyUsage, legacy("9223372036854775807"), Limits{}, "input_token_count"},
		{"legacy plausible", KindLegacyUsage, legacy("100"), Limits{}, ""},
		{"payload 20 s", KindPayload, payload("20000"), Limits{}, ""},
		{"payload 24 h", KindPayload, payload("86400000"), Limits{}, ""},
		{"payload 3 million years", KindPayload, payload("94670856000000000"), Limits{}, "execution_duration_ms"},
		{"payload over a configured bound", KindPayload, payload("20000"), Limits{MaxRequestDuration: 10 * time.Second}, "execution_duration_ms"},
		{"trace 1.25 s", KindTrace, trace(`"1.25s"`), Limits{}, ""},
		{"trace 2 days", KindTrace, trace(`"172800s"`), Limits{}, "execution_duration_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rows.jsonl")
			if err := os.WriteFile(path, []byte(tt.row+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := read(t, Spec{Kind: tt.kind, Path: path, ServicePrincipal: "sp-1", AgentEndpoint: "agent", Limits: tt.limits}, Window{})
			switch {
			case tt.field == "" && len(r.Dead) > 0:
				t.Fatalf("plausible row dead-lettered: %s", r.Dead[0].Reason)
			case tt.field == "":
				return
			case len(r.Dead) != 1:
				t.Fatalf("%d dead letters, want 1 naming %s", len(r.Dead), tt.field)
			case r.Dead[0].Field != tt.field:
				t.Errorf("dead letter names %q (%s), want %q", r.Dead[0].Field, r.Dead[0].Reason, tt.field)
			}
		})
	}
}
