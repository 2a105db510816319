package ingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// TestDecodeSpan decodes one span row per case, the way every format's rows
// are decoded, and checks the agent request or the error.
func TestDecodeSpan(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const ids = `"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","start_time_unix_nano":1772359200000000000,"end_time_unix_nano":1772359201000000000`
	cases := []struct {
		name  string
		row   string
		keys  schemas.SpanKeys
		check func(t *testing.T, r schemas.AgentRequest)
		skip  bool
		field string // expected FieldError.Field
	}{
		{name: "MLflow JSON-encoded values are decoded", row: `{` + ids + `,"attributes":{"mlflow.trace.user":"\"ann@example.com\"","mlflow.trace.session":"\"s\\\"1\""}}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "ann@example.com" || r.Session != `s"1` {
					t.Errorf("user %q session %q", r.EndUser, r.Session)
				}
			}},
		{name: "precedence: enduser.id before user.id", row: `{` + ids + `,"attributes":{"user.id":"b","enduser.id":"a"}}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "a" {
					t.Errorf("user %q, want a", r.EndUser)
				}
			}},
		{name: "nested and empty values are passed over", row: `{` + ids + `,"attributes":{"enduser.id":{"id":"x"},"user.id":"","mlflow.trace.user":["y"],"langfuse.user.id":"d"}}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "d" {
					t.Errorf("user %q, want d", r.EndUser)
				}
			}},
		{name: "numbers and booleans are text", row: `{` + ids + `,"attributes":{"user.id":1234567,"session.id":true,"client_request_id":12.5}}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "1234567" || r.Session != "true" || r.AgentRequestID != "12.5" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "configured keys", row: `{` + ids + `,"attributes":{"enduser.id":"a","app.user":"z","app.req":"q"}}`,
			keys: schemas.SpanKeys{User: []string{"app.user"}, RequestID: []string{"app.req"}},
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "z" || r.AgentRequestID != "q" || r.ClientRequestID != "q" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "attributes as a JSON string (VARIANT text)", row: `{` + ids + `,"attributes":"{\"enduser.id\":\"a\"}","resource":"{\"attributes\":\"{\\\"service.name\\\":\\\"bot\\\"}\"}"}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "a" || r.AgentEndpoint != "bot" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "attributes as key-value pairs (Spark MAP export)", row: `{` + ids + `,"attributes":[{"key":"enduser.id","value":"a"},{"key":"big","value":"x"}]}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "a" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "times as numeric strings and a bare status", row: `{"trace_id":"t","span_id":"s","start_time_unix_nano":"1772359200000000000","end_time_unix_nano":"2026-03-01T10:00:00.0015Z","status":"STATUS_CODE_ERROR"}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if !r.StartTime.Equal(t0) || r.DurationMS != 2 || r.Status != "ERROR" {
					t.Errorf("%+v", r) // 1.5 ms rounds up: the request covers the span
				}
			}},
		{name: "a root span naming no one is still a request", row: `{` + ids + `,"parent_span_id":null}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "" || r.TraceID != "0af7651916cd43dd8448eb211c80319c" || r.ServicePrincipal != "sp" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "a child span naming the user is a request", row: `{` + ids + `,"parent_span_id":"p","attributes":{"enduser.id":"a"}}`,
			check: func(t *testing.T, r schemas.AgentRequest) {
				if r.EndUser != "a" {
					t.Errorf("%+v", r)
				}
			}},
		{name: "a child span naming no one is skipped", row: `{` + ids + `,"parent_span_id":"p","attributes":{"session.id":"s"}}`, skip: true},
		{name: "end before start", row: `{"trace_id":"t","span_id":"s","start_time_unix_nano":2,"end_time_unix_nano":1}`, field: "end_time_unix_nano"},
		{name: "zero start", row: `{"trace_id":"t","span_id":"s","start_time_unix_nano":0,"end_time_unix_nano":1}`, field: "start_time_unix_nano"},
		{name: "missing end", row: `{"trace_id":"t","span_id":"s","start_time_unix_nano":1}`, field: "end_time_unix_nano"},
		{name: "missing trace id", row: `{"span_id":"s","start_time_unix_nano":1,"end_time_unix_nano":1}`, field: "trace_id"},
		{name: "attributes not a map", row: `{` + ids + `,"attributes":"hello"}`, field: "attributes"},
		{name: "bad JSON in attributes text", row: `{` + ids + `,"attributes":"{\"enduser.id\":"}`, field: "attributes"},
		{name: "invalid UTF-8 in a wanted attribute", row: "{" + ids + `,"attributes":{"enduser.id":"a` + "\xff" + `"}}`, field: "attributes"},
		{name: "resource not an object", row: `{` + ids + `,"resource":[1]}`, field: "resource"},
		{name: "status code not a string", row: `{` + ids + `,"status":{"code":{"x":1}}}`, field: "status.code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newCodec(Spec{Kind: KindOTelSpans, ServicePrincipal: "sp", SpanKeys: tc.keys})
			if err != nil {
				t.Fatal(err)
			}
			d := decoder{intern: new(internCache)}
			var r schemas.AgentRequest
			err = c.agentJSON(&d, []byte(tc.row), &r)
			switch {
			case tc.skip:
				if err != errSkipped {
					t.Fatalf("err %v, want the span skipped (%+v)", err, r)
				}
			case tc.field != "":
				fe, ok := err.(*FieldError)
				if !ok || fe.Field != tc.field {
					t.Fatalf("err %v, want a FieldError naming %s", err, tc.field)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if r.Source != schemas.SourceOTelSpan {
					t.Errorf("source %q", r.Source)
				}
				tc.check(t, r)
			}
		})
	}
}

// genSpansJSONL writes n requests as v2 span rows: a root span naming the
// user, with MLflow's large inputs and outputs attributes, and two children.
func genSpansJSONL(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 5))
	var b bytes.Buffer
	inputs := `"mlflow.spanInputs":"{\"messages\":[{\"role\":\"user\",\"content\":\"` + string(bytes.Repeat([]byte("lorem ipsum "), 30)) + `\"}]}"`
	for i := range n {
		trace := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
		start := benchT0.Add(time.Duration(i) * 97 * time.Millisecond).UnixNano()
		dur := int64(1+rng.IntN(20)) * int64(time.Second)
		res := fmt.Sprintf(`"resource":{"attributes":{"service.name":"agent-%d","telemetry.sdk.language":"python"},"dropped_attributes_count":0}`, i%5)
		fmt.Fprintf(&b, `{"record_id":"r-%d","service_name":"agent-%d","trace_id":"%s","span_id":"%016x","parent_span_id":"","name":"agent","kind":"SPAN_KIND_SERVER",`+
			`"start_time_unix_nano":%d,"end_time_unix_nano":%d,"attributes":{%s,"mlflow.trace.user":"\"user%d@example.com\"","mlflow.trace.session":"\"s-%d\"",`+
			`"client_request_id":"dbr-%08d","mlflow.spanType":"\"AGENT\""},"status":{"message":"","code":"STATUS_CODE_OK"},%s}`+"\n",
			i, i%5, trace, rng.Uint64(), start, start+dur, inputs, rng.IntN(500), i/3, i, res)
		for k := range 2 {
			fmt.Fprintf(&b, `{"record_id":"r-%d-%d","trace_id":"%s","span_id":"%016x","parent_span_id":"p","name":"llm","kind":"SPAN_KIND_CLIENT",`+
				`"start_time_unix_nano":%d,"end_time_unix_nano":%d,"attributes":{%s,"mlflow.spanType":"\"CHAT_MODEL\"","gen_ai.usage.input_tokens":%d},"status":{"code":"STATUS_CODE_OK"},%s}`+"\n",
				i, k, trace, rng.Uint64(), start+int64(k)*dur/2, start+int64(k+1)*dur/2, inputs, rng.IntN(4000), res)
		}
	}
	return b.Bytes()
}

// BenchmarkReadFilesOTelSpansJSONL measures ReadFiles on 300k v2 span rows
// (100k requests, each a root span and two children, about 1 KB a row).
func BenchmarkReadFilesOTelSpansJSONL(b *testing.B) {
	const requests = 100_000
	path := filepath.Join(b.TempDir(), "spans.jsonl")
	data := genSpansJSONL(requests)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	benchReadEmitting(b, Spec{Kind: KindOTelSpans, Path: path, ServicePrincipal: "sp"}, 3*requests, requests, int64(len(data)))
}
