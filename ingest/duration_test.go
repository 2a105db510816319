package ingest

import (
	"errors"
	"testing"
)

// Agent request durations beyond MaxRequestDuration are refused naming the
// field, in payload (milliseconds) and trace (protobuf duration) rows alike.
func TestAbsurdDurationRefused(t *testing.T) {
	payload := `{"databricks_request_id":"ar-1","request_time":"2026-11-01T10:00:00Z","requester":"ana@example.com","execution_duration_ms":`
	trace := `{"trace_id":"tr-1","request_time":"2026-11-01T10:00:00Z","execution_duration_ms":`
	tests := []struct {
		name string
		dec  func() error
		ok   bool
	}{
		{"payload 20 s", func() error { _, err := DecodePayload([]byte(payload + "20000}")); return err }, true},
		{"payload 24 h", func() error { _, err := DecodePayload([]byte(payload + "86400000}")); return err }, true},
		{"payload 3 million years", func() error { _, err := DecodePayload([]byte(payload + "94670856000000000}")); return err }, false},
		{"trace 1.25 s", func() error { _, err := DecodeTrace([]byte(trace + `"1.25s"}`)); return err }, true},
		{"trace 2 days", func() error { _, err := DecodeTrace([]byte(trace + `"172800s"}`)); return err }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dec()
			var fe *FieldError
			switch {
			case tt.ok && err != nil:
				t.Fatal(err)
			case !tt.ok && (!errors.As(err, &fe) || fe.Field != "execution_duration_ms"):
				t.Errorf("err %v, want a FieldError naming execution_duration_ms", err)
			}
		})
	}
}
