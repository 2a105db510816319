package kafka

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
)

func testDecoder() *Decoder {
	return &Decoder{UsageTopic: "u", AgentsTopic: "a", ServicePrincipals: map[string]string{"bot": "sp-bot"},
		MaxBytes: 2048, MaxFuture: time.Hour, Now: func() time.Time { return time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) }}
}

func msg(topic, value string, headers ...string) *kafka.Message {
	m := &kafka.Message{Topic: topic, Partition: 3, Offset: 42, Value: []byte(value), Time: time.Unix(1, 0)}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Headers = append(m.Headers, kafka.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return m
}

const (
	goodUsage   = `{"invocation_id":"i1","event_time":"2026-11-01T10:00:00Z","requester":"sp-user","schema_version":1,"total_tokens":5}`
	goodLegacy  = `{"databricks_request_id":"d1","request_time":"2026-11-01T10:00:00Z","requester":"sp-user","input_token_count":3}`
	goodPayload = `{"databricks_request_id":"ar-1","request_time":"2026-11-01T10:00:00Z","execution_duration_ms":1000,"requester":"ana"}`
	goodTrace   = `{"trace_id":"tr-0123456789abcdef0123456789abcdef","client_request_id":"ar-2","request_time":"2026-11-01T10:00:00Z",` +
		`"trace_metadata":{"mlflow.trace.user":"bo","mlflow.databricks.modelServingEndpointName":"bot"}}`
)

func TestDecodeGood(t *testing.T) {
	tests := []struct {
		name     string
		m        *kafka.Message
		kind     stream.Kind
		key, who string // key is the service principal; who the id or end user
	}{
		{"usage without header", msg("u", goodUsage), stream.KindUsage, "sp-user", "i1"},
		{"usage", msg("u", goodUsage, HeaderKind, "usage"), stream.KindUsage, "sp-user", "i1"},
		{"legacy usage", msg("u", goodLegacy, HeaderKind, "legacy_usage"), stream.KindUsage, "sp-user", "d1"},
		{"payload", msg("a", goodPayload, HeaderKind, "payload", HeaderAgentEndpoint, "bot"), stream.KindAgent, "sp-bot", "ana"},
		{"payload sniffed", msg("a", goodPayload, HeaderAgentEndpoint, "bot"), stream.KindAgent, "sp-bot", "ana"},
		{"trace endpoint from metadata", msg("a", goodTrace), stream.KindAgent, "sp-bot", "bo"},
		{"service principal header", msg("a", goodPayload, HeaderAgentEndpoint, "other", HeaderServicePrincipal, "sp-x"), stream.KindAgent, "sp-x", "ana"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, key, dl := testDecoder().Decode(tt.m)
			if dl != nil {
				t.Fatalf("dead letter %+v", dl)
			}
			who := rec.Usage.InvocationID
			if rec.Kind == stream.KindAgent {
				who = rec.Agent.EndUser
			}
			if rec.Kind != tt.kind || key != tt.key || who != tt.who || !rec.SourceTime.Equal(time.Unix(1, 0)) {
				t.Errorf("got kind %s key %q who %q, want %s %q %q", rec.Kind, key, who, tt.kind, tt.key, tt.who)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name         string
		m            *kafka.Message
		field, cause string
	}{
		{"truncated", msg("u", `{"invocation_id":"i1","event_ti`), "", "JSON"},
		{"wrong type", msg("u", strings.Replace(goodUsage, `"total_tokens":5`, `"total_tokens":"five"`, 1)), "total_tokens", "number"},
		{"missing key", msg("u", `{"invocation_id":"i1","event_time":"2026-11-01T10:00:00Z"}`), "requester", "missing"},
		{"unknown schema_version", msg("u", strings.Replace(goodUsage, `"schema_version":1`, `"schema_version":7`, 1)), "schema_version", "unknown schema_version 7"},
		{"oversized", msg("u", strings.Replace(goodUsage, `"total_tokens":5`, `"user_agent":"`+strings.Repeat("x", 3000)+`"`, 1)), "", "over the limit of 2048"},
		{"not UTF-8", msg("u", strings.Replace(goodUsage, "sp-user", "sp-\xc3\x28", 1)), "", "UTF-8 (at byte"},
		{"unknown kind", msg("u", goodUsage, HeaderKind, "trace"), HeaderKind, "use usage or legacy_usage"},
		{"future", msg("u", strings.Replace(goodUsage, "2026-11-01", "2027-01-01", 1)), "event_time", "ahead of the clock"},
		{"ancient", msg("u", strings.Replace(goodUsage, "2026-11-01", "1970-01-02", 1)), "event_time", "before 2000"},
		{"tokens near 2^63", msg("u", strings.Replace(goodUsage, `"total_tokens":5`, `"total_tokens":9223372036854775807`, 1)), "total_tokens", "limits.max_tokens"},
		{"request lasting years", msg("a", strings.Replace(goodPayload, `"execution_duration_ms":1000`, `"execution_duration_ms":94670856000000000`, 1), HeaderAgentEndpoint, "bot"),
			"execution_duration_ms", "match.max_request_duration"},
		{"agent kind unknown", msg("a", `{"neither":1}`), HeaderKind, "payload, trace or otel_spans"},
		{"payload without endpoint", msg("a", goodPayload, HeaderKind, "payload"), HeaderAgentEndpoint, "names no agent endpoint"},
		{"endpoint without principal", msg("a", goodPayload, HeaderAgentEndpoint, "ghost"), "agent_endpoint", `"ghost" has no service principal`},
		{"other topic", msg("x", goodUsage), "", "neither the usage topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, dl := testDecoder().Decode(tt.m)
			if dl == nil {
				t.Fatal("decoded, want a dead letter")
			}
			if dl.Field != tt.field || !strings.Contains(dl.Reason, tt.cause) {
				t.Errorf("dead letter field %q reason %q, want field %q and a reason mentioning %q", dl.Field, dl.Reason, tt.field, tt.cause)
			}
			if dl.Source != tt.m.Topic || dl.Location != "partition 3 offset 42" || len(dl.Record) > schemas.MaxDeadLetterRecord {
				t.Errorf("dead letter source %q location %q record %d bytes", dl.Source, dl.Location, len(dl.Record))
			}
		})
	}
}

func TestDeadLetterMessage(t *testing.T) {
	dl := &schemas.DeadLetter{Source: "u", Location: Location(3, 42), Kind: schemas.KindUsage, Field: "f", Reason: "bad \xff bytes"}
	m, err := DeadLetterMessage(dl, 3, 42)
	if err != nil {
		t.Fatal(err)
	}
	var back schemas.DeadLetter
	if err := json.Unmarshal(m.Value, &back); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	if string(m.Key) != "u/3/42" || h[HeaderSourceTopic] != "u" || h[HeaderSourcePartition] != "3" || h[HeaderSourceOffset] != "42" || back.Field != "f" {
		t.Errorf("message %q %v %+v", m.Key, h, back)
	}
}

// Any message value, on either topic, under any kind header, decodes to a
// record or a dead letter naming why: never a panic, never both or neither.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{goodUsage, goodPayload, goodTrace, `{"invocation_id":`, `[]`, "\xff"} {
		f.Add("u", "", []byte(s))
		f.Add("a", "", []byte(s))
	}
	f.Add("a", "payload", []byte(goodPayload))
	f.Add("u", "legacy_usage", []byte(`{"databricks_request_id":"r","request_time":"2026-11-01T10:00:00Z","requester":"sp"}`))
	f.Fuzz(func(t *testing.T, topic, kind string, value []byte) {
		var m *kafka.Message
		if kind == "" {
			m = msg(topic, string(value), HeaderAgentEndpoint, "bot")
		} else {
			m = msg(topic, string(value), HeaderKind, kind, HeaderAgentEndpoint, "bot")
		}
		rec, _, dl := testDecoder().Decode(m)
		if (dl == nil) == (rec.Kind == 0) {
			t.Fatalf("record %+v and dead letter %+v", rec, dl)
		}
		if dl != nil && (dl.Reason == "" || len(dl.Record) > schemas.MaxDeadLetterRecord) {
			t.Fatalf("dead letter %+v", dl)
		}
	})
}
