package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// usageRow is a complete, valid system.ai_gateway.usage row; cases edit it.
func usageRow() map[string]any {
	return map[string]any{
		"account_id":          "acc-1",
		"workspace_id":        "1234567890",
		"request_id":          "req-1",
		"invocation_id":       "inv-1",
		"schema_version":      1,
		"event_time":          "2026-03-01T10:00:00.123Z",
		"endpoint_id":         "ep-uuid",
		"endpoint_name":       "gpt-gateway",
		"endpoint_tags":       map[string]any{"team": "ml"},
		"destination_type":    "FOUNDATION_MODEL",
		"destination_name":    "databricks-gpt-5-mini",
		"destination_id":      "dest-1",
		"destination_model":   "gpt-5-mini",
		"requester":           "sp-agent",
		"requester_type":      "SERVICE_PRINCIPAL",
		"api_type":            "mlflow/v1/chat/completions",
		"user_agent":          "openai-python/1.0",
		"request_tags":        map[string]any{"mlflow_trace_id": "tr-abc"},
		"input_tokens":        1200,
		"output_tokens":       300,
		"total_tokens":        1500,
		"token_details":       map[string]any{"cache_read_input_tokens": 100, "cache_creation_input_tokens": 0, "output_reasoning_tokens": 50},
		"status_code":         200,
		"latency_ms":          812,
		"url":                 "https://x/ai-gateway/mlflow/v1/chat/completions",
		"routing_information": map[string]any{"attempts": []any{map[string]any{"priority": "1", "status_code": 200}}},
	}
}

func wantUsage() schemas.UsageEvent {
	return schemas.UsageEvent{
		InvocationID: "inv-1", RequestID: "req-1", AccountID: "acc-1", WorkspaceID: "1234567890",
		SchemaVersion: 1, EventTime: time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC),
		EndpointID: "ep-uuid", EndpointName: "gpt-gateway",
		DestinationName: "databricks-gpt-5-mini", DestinationModel: "gpt-5-mini", Requester: "sp-agent",
		RequestTags: map[string]string{"mlflow_trace_id": "tr-abc"},
		InputTokens: 1200, OutputTokens: 300, TotalTokens: 1500,
		TokenDetails: schemas.TokenDetails{CacheReadInputTokens: 100, OutputReasoningTokens: 50},
		StatusCode:   200, LatencyMS: 812, Source: schemas.SourceAIGateway,
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeUsage(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		edit  func(m map[string]any) // applied to usageRow
		raw   string                 // used instead when set
		check func(u *schemas.UsageEvent)
		field string // expected FieldError.Field
		why   string // expected substring of Reason
	}{
		{name: "complete row", edit: func(map[string]any) {}},
		{name: "missing invocation_id", edit: func(m map[string]any) { delete(m, "invocation_id") }, field: "invocation_id", why: "missing"},
		{name: "empty invocation_id", edit: func(m map[string]any) { m["invocation_id"] = "" }, field: "invocation_id", why: "missing"},
		{name: "null invocation_id", edit: func(m map[string]any) { m["invocation_id"] = nil }, field: "invocation_id", why: "missing"},
		{name: "missing event_time", edit: func(m map[string]any) { delete(m, "event_time") }, field: "event_time", why: "missing"},
		{name: "missing requester", edit: func(m map[string]any) { delete(m, "requester") }, field: "requester", why: "missing"},
		{name: "bad timestamp", edit: func(m map[string]any) { m["event_time"] = "abc" }, field: "event_time", why: `not a timestamp: "abc"`},
		{name: "impossible date", edit: func(m map[string]any) { m["event_time"] = "2026-02-30 10:00:00" }, field: "event_time", why: "not a timestamp"},
		{name: "timestamp as object", edit: func(m map[string]any) { m["event_time"] = map[string]any{} }, field: "event_time", why: "not a timestamp"},
		{name: "space timestamp is UTC", edit: func(m map[string]any) { m["event_time"] = "2026-03-01 10:00:00" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0) }},
		{name: "space timestamp nanos", edit: func(m map[string]any) { m["event_time"] = "2026-03-01 10:00:00.000000001" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0.Add(1)) }},
		{name: "timestamp with offset", edit: func(m map[string]any) { m["event_time"] = "2026-03-01T12:30:00+02:30" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0) }},
		{name: "timestamp with short zone", edit: func(m map[string]any) { m["event_time"] = "2026-03-01 05:00:00-05" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0) }},
		{name: "timestamp with UTC word", edit: func(m map[string]any) { m["event_time"] = "2026-03-01 10:00:00 UTC" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0) }},
		{name: "epoch ms number", edit: func(m map[string]any) { m["event_time"] = t0.UnixMilli() + 5 },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0.Add(5*time.Millisecond)) }},
		{name: "epoch ms string", edit: func(m map[string]any) { m["event_time"] = "1772359200000" },
			check: func(u *schemas.UsageEvent) { eqTime(t, u.EventTime, t0) }},
		{name: "negative input_tokens", edit: func(m map[string]any) { m["input_tokens"] = -1 }, field: "input_tokens", why: "negative"},
		{name: "negative nested token", edit: func(m map[string]any) {
			m["token_details"] = map[string]any{"output_reasoning_tokens": -3}
		}, field: "token_details.output_reasoning_tokens", why: "negative"},
		{name: "tokens as strings", edit: func(m map[string]any) { m["input_tokens"] = "1200"; m["total_tokens"] = " 1500 " }},
		{name: "integral float tokens", edit: func(m map[string]any) { m["input_tokens"] = 1200.0; m["output_tokens"] = "3e2" }},
		{name: "fractional tokens", edit: func(m map[string]any) { m["input_tokens"] = 1.5 }, field: "input_tokens", why: "not an integer"},
		{name: "tokens not a number", edit: func(m map[string]any) { m["input_tokens"] = "many" }, field: "input_tokens", why: "not a number"},
		{name: "null tokens are zero", edit: func(m map[string]any) {
			m["input_tokens"], m["output_tokens"], m["total_tokens"], m["token_details"] = nil, nil, nil, nil
		}, check: func(u *schemas.UsageEvent) {
			if u.InputTokens != 0 || u.OutputTokens != 0 || u.TotalTokens != 0 || u.TokenDetails != (schemas.TokenDetails{}) {
				t.Errorf("tokens = %+v", u)
			}
		}},
		{name: "missing tokens are zero", edit: func(m map[string]any) { delete(m, "input_tokens"); delete(m, "token_details") },
			check: func(u *schemas.UsageEvent) {
				if u.InputTokens != 0 || u.TokenDetails != (schemas.TokenDetails{}) {
					t.Errorf("tokens = %+v", u)
				}
			}},
		{name: "token_details as string", edit: func(m map[string]any) {
			m["token_details"] = `{"cache_read_input_tokens":100,"output_reasoning_tokens":"50"}`
		}},
		{name: "token_details not object", edit: func(m map[string]any) { m["token_details"] = 7 }, field: "token_details", why: "not an object"},
		{name: "map as string", edit: func(m map[string]any) { m["request_tags"] = `{"mlflow_trace_id":"tr-abc"}` }},
		{name: "map as pair array", edit: func(m map[string]any) {
			m["request_tags"] = []any{map[string]any{"key": "mlflow_trace_id", "value": "tr-abc"}}
		}},
		{name: "map as pair array in string", edit: func(m map[string]any) {
			m["request_tags"] = `[{"value":"tr-abc","key":"mlflow_trace_id"}]`
		}},
		{name: "map null value dropped", edit: func(m map[string]any) {
			m["request_tags"] = map[string]any{"mlflow_trace_id": "tr-abc", "gone": nil}
		}},
		{name: "empty map is nil", edit: func(m map[string]any) { m["request_tags"] = map[string]any{} },
			check: func(u *schemas.UsageEvent) {
				if u.RequestTags != nil {
					t.Errorf("RequestTags = %#v", u.RequestTags)
				}
			}},
		{name: "map non-string value", edit: func(m map[string]any) { m["request_tags"] = map[string]any{"n": 1} },
			field: "request_tags", why: `value of key "n" is not a string: 1`},
		{name: "map nested object value", edit: func(m map[string]any) { m["request_tags"] = map[string]any{"n": map[string]any{}} },
			field: "request_tags", why: "not a string"},
		// Columns attribution does not read are skipped, whatever they hold:
		// a bad endpoint_tags must not cost the row its attribution.
		{name: "unread columns with bad values", edit: func(m map[string]any) {
			m["endpoint_tags"] = map[string]any{"n": map[string]any{}}
			m["user_agent"] = 5
			m["api_type"] = []any{1}
		}},
		{name: "pair array non-string value", edit: func(m map[string]any) {
			m["request_tags"] = []any{map[string]any{"key": "k", "value": true}}
		}, field: "request_tags", why: "not a string"},
		{name: "pair array without key", edit: func(m map[string]any) { m["request_tags"] = []any{map[string]any{"value": "v"}} },
			field: "request_tags", why: "no \"key\""},
		{name: "map as number", edit: func(m map[string]any) { m["request_tags"] = 5 }, field: "request_tags", why: "not a map"},
		{name: "map string not JSON", edit: func(m map[string]any) { m["request_tags"] = "a=b" }, field: "request_tags", why: "not a map"},
		{name: "map string broken JSON", edit: func(m map[string]any) { m["request_tags"] = `{"a":` }, field: "request_tags", why: "invalid JSON"},
		{name: "unknown schema_version", edit: func(m map[string]any) { m["schema_version"] = 2 }, field: "schema_version", why: "unknown schema_version 2"},
		{name: "zero schema_version", edit: func(m map[string]any) { m["schema_version"] = 0 }, field: "schema_version", why: "unknown schema_version 0"},
		{name: "no schema_version", edit: func(m map[string]any) { delete(m, "schema_version") },
			check: func(u *schemas.UsageEvent) {
				if u.SchemaVersion != 0 {
					t.Errorf("SchemaVersion = %d", u.SchemaVersion)
				}
			}},
		{name: "numeric workspace id", edit: func(m map[string]any) { m["workspace_id"] = 1234567890 }},
		{name: "status code out of range", edit: func(m map[string]any) { m["status_code"] = 1 << 40 }, field: "status_code", why: "out of range"},
		{name: "requester not a string", edit: func(m map[string]any) { m["requester"] = []any{"a"} }, field: "requester", why: "not a string"},
		{name: "unknown keys ignored", edit: func(m map[string]any) {
			m["ip_address"] = nil
			m["invocation_metadata"] = map[string]any{"source": "x", "deep": []any{[]any{1, 2, map[string]any{"a": "b"}}}}
		}},
		{name: "invalid UTF-8 in a value", raw: "{\"invocation_id\":\"inv-1\",\"event_time\":\"2026-03-01T10:00:00Z\",\"requester\":\"sp-\xff\"}",
			field: "requester", why: "invalid UTF-8"},
		{name: "invalid UTF-8 in an unknown key's value", raw: "{\"invocation_id\":\"inv-1\",\"url\":\"\xc3(\",\"event_time\":\"2026-03-01T10:00:00Z\",\"requester\":\"sp\"}",
			field: "url", why: "invalid UTF-8"},
		{name: "invalid UTF-8 in a map", raw: "{\"invocation_id\":\"inv-1\",\"event_time\":\"2026-03-01T10:00:00Z\",\"requester\":\"sp\",\"request_tags\":{\"k\":\"\xed\xa0\x80\"}}",
			field: "request_tags", why: "invalid UTF-8"},
		{name: "lone surrogate escape", raw: `{"invocation_id":"inv-\ud800","event_time":"2026-03-01T10:00:00Z","requester":"sp"}`,
			field: "invocation_id", why: "invalid UTF-8"},
		{name: "escapes decoded", raw: `{"invocation_id":"inv-\u00e9\ud83d\ude00\n","event_time":"2026-03-01T10:00:00Z","requester":"sp"}`,
			check: func(u *schemas.UsageEvent) {
				if u.InvocationID != "inv-é😀\n" {
					t.Errorf("InvocationID = %q", u.InvocationID)
				}
			}},
		{name: "not an object", raw: `[1,2]`, why: "not a JSON object"},
		{name: "truncated", raw: `{"invocation_id":"inv-1","event_time":`, field: "event_time", why: "invalid JSON"},
		{name: "trailing garbage", raw: `{"invocation_id":"inv-1","event_time":"2026-03-01T10:00:00Z","requester":"sp"} x`, why: "data after"},
		{name: "empty", raw: ``, why: "not a JSON object"},
		{name: "deep nesting", raw: `{"x":` + strings.Repeat("[", 100000) + `}`, why: "nesting deeper"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.raw)
			if tc.raw == "" && tc.edit != nil {
				m := usageRow()
				tc.edit(m)
				b = mustJSON(t, m)
			}
			u, err := DecodeUsage(b)
			if tc.why != "" {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v (%T), want a *FieldError", err, err)
				}
				if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.why) {
					t.Fatalf("err = %+v, want field %q, reason containing %q", fe, tc.field, tc.why)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(&u)
				return
			}
			if want := wantUsage(); !reflect.DeepEqual(u, want) {
				t.Fatalf("got  %+v\nwant %+v", u, want)
			}
		})
	}
}

func eqTime(t *testing.T, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("time = %v, want %v in UTC", got, want)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	_, err := DecodeUsage([]byte(`{"invocation_id":"i","requester":"r","event_time":"abc"}`))
	if got, want := err.Error(), `field "event_time": not a timestamp: "abc"`; got != want {
		t.Fatalf("Error() = %s, want %s", got, want)
	}
	if got := (&FieldError{Reason: "not a JSON object"}).Error(); got != "not a JSON object" {
		t.Fatalf("Error() = %s", got)
	}
}

func TestDecodeLegacyUsage(t *testing.T) {
	base := `"databricks_request_id":"dbr-1","client_request_id":"c-1","requester":"sp","request_time":"2026-03-01 10:00:00",` +
		`"input_token_count":10,"output_token_count":"5","usage_context":{"end_user":"ann@example.com"},"request_streaming":"true",` +
		`"served_entity_id":"se-1","status_code":200,"workspace_id":"w","account_id":"a"`
	u, err := DecodeLegacyUsage([]byte("{" + base + "}"))
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.UsageEvent{
		InvocationID: "dbr-1", RequestID: "dbr-1", AccountID: "a", WorkspaceID: "w",
		EventTime: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), EndpointID: "se-1",
		Requester: "sp", RequestTags: map[string]string{"end_user": "ann@example.com", "client_request_id": "c-1"},
		InputTokens: 10, OutputTokens: 5, TotalTokens: 15, StatusCode: 200, Source: schemas.SourceServingEndpoint,
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got  %+v\nwant %+v", u, want)
	}
	for _, tc := range []struct{ drop, field string }{
		{`"databricks_request_id":"dbr-1",`, "databricks_request_id"},
		{`"requester":"sp",`, "requester"},
		{`"request_time":"2026-03-01 10:00:00",`, "request_time"},
	} {
		_, err := DecodeLegacyUsage([]byte("{" + strings.Replace(base, tc.drop, "", 1) + "}"))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || fe.Reason != "missing" {
			t.Errorf("without %s: err = %v", tc.field, err)
		}
	}
	_, err = DecodeLegacyUsage([]byte(`{"databricks_request_id":"d","requester":"r","request_time":"2026-03-01 10:00:00","output_token_count":-2}`))
	if err == nil || !strings.Contains(err.Error(), `"output_token_count": negative`) {
		t.Errorf("negative count: err = %v", err)
	}
	_, err = DecodeLegacyUsage([]byte(`{"databricks_request_id":"d","requester":"r","request_time":"2026-03-01 10:00:00","request_streaming":"maybe"}`))
	if err == nil || !strings.Contains(err.Error(), "not a boolean") {
		t.Errorf("bad bool: err = %v", err)
	}
}

func TestDecodePayload(t *testing.T) {
	p, err := DecodePayload([]byte(`{"databricks_request_id":"dbr-1","client_request_id":"c","request_time":"2026-03-01T10:00:00Z",` +
		`"status_code":200,"execution_duration_ms":1500,"requester":"ann@example.com","served_entity_id":"se","request":"{\"messages\":[]}"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := schemas.PayloadRow{DatabricksRequestID: "dbr-1", ClientRequestID: "c", RequestTime: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		StatusCode: 200, ExecutionDurationMS: 1500, Requester: "ann@example.com", ServedEntityID: "se"}
	if p != want {
		t.Fatalf("got %+v", p)
	}
	// The pre-AI-Gateway payload layout: timestamp_ms, execution_time_ms, status_code as a string.
	p, err = DecodePayload([]byte(`{"databricks_request_id":"dbr-1","timestamp_ms":1772359200000,"execution_time_ms":"1500","status_code":"200"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.RequestTime.Equal(want.RequestTime) || p.ExecutionDurationMS != 1500 || p.StatusCode != 200 {
		t.Fatalf("legacy layout: %+v", p)
	}
	// The canonical column wins over its alias, whatever the order.
	p, err = DecodePayload([]byte(`{"databricks_request_id":"d","request_time":"2026-03-01T10:00:00Z","timestamp_ms":0}`))
	if err != nil || !p.RequestTime.Equal(want.RequestTime) {
		t.Fatalf("canonical first: %+v %v", p, err)
	}
	p, err = DecodePayload([]byte(`{"databricks_request_id":"d","timestamp_ms":0,"request_time":"2026-03-01T10:00:00Z"}`))
	if err != nil || !p.RequestTime.Equal(want.RequestTime) {
		t.Fatalf("alias first: %+v %v", p, err)
	}
	for _, tc := range []struct{ raw, field, why string }{
		{`{"request_time":"2026-03-01T10:00:00Z"}`, "databricks_request_id", "missing"},
		{`{"databricks_request_id":"d"}`, "request_time", "missing"},
		{`{"databricks_request_id":"d","request_time":"yesterday"}`, "request_time", "not a timestamp"},
		{`{"databricks_request_id":"d","request_time":"2026-03-01T10:00:00Z","execution_duration_ms":-1}`, "execution_duration_ms", "negative"},
		{`{"databricks_request_id":"d","timestamp_ms":"x"}`, "timestamp_ms", "not a timestamp"},
	} {
		_, err := DecodePayload([]byte(tc.raw))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.why) {
			t.Errorf("%s: err = %v, want %s %s", tc.raw, err, tc.field, tc.why)
		}
	}
}

func TestDecodeTrace(t *testing.T) {
	want := schemas.TraceRow{
		TraceID: "tr-1", ClientRequestID: "dbr-1", RequestTime: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		ExecutionDurationMS: 1250, State: "OK",
		TraceMetadata: map[string]string{schemas.TraceUserKey: "ann@example.com", schemas.TraceEndpointKey: "agent-ep"},
		Tags:          map[string]string{"mlflow.user": "dev"},
	}
	for _, tc := range []struct{ name, raw string }{
		{"v3 columns", `{"trace_id":"tr-1","client_request_id":"dbr-1","request_time":1772359200000,"execution_duration_ms":1250,"state":"OK",` +
			`"trace_metadata":{"mlflow.trace.user":"ann@example.com","mlflow.databricks.modelServingEndpointName":"agent-ep"},"tags":{"mlflow.user":"dev"}}`},
		{"to_dict form", `{"trace_id":"tr-1","client_request_id":"dbr-1","request_time":"2026-03-01T10:00:00Z","execution_duration":"1.250s","state":"OK",` +
			`"trace_location":{"type":"MLFLOW_EXPERIMENT"},"trace_metadata":{"mlflow.trace.user":"ann@example.com","mlflow.databricks.modelServingEndpointName":"agent-ep"},"tags":{"mlflow.user":"dev"}}`},
		{"v2 names", `{"request_id":"tr-1","client_request_id":"dbr-1","timestamp_ms":1772359200000,"execution_time_ms":1250,"state":"OK",` +
			`"request_metadata":[{"key":"mlflow.trace.user","value":"ann@example.com"},{"key":"mlflow.databricks.modelServingEndpointName","value":"agent-ep"}],"tags":"{\"mlflow.user\":\"dev\"}"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTrace([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	for _, tc := range []struct{ raw, field, why string }{
		{`{"request_time":1}`, "trace_id", "missing"},
		{`{"trace_id":"t"}`, "request_time", "missing"},
		{`{"trace_id":"t","request_time":1,"trace_metadata":{"mlflow.trace.user":5}}`, "trace_metadata", "not a string"},
		{`{"trace_id":"t","request_time":1,"tags":["a"]}`, "tags", "not a {\"key\",\"value\"} object"},
		{`{"trace_id":"t","request_time":1,"execution_duration":"soon"}`, "execution_duration", "not a number"},
	} {
		_, err := DecodeTrace([]byte(tc.raw))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.why) {
			t.Errorf("%s: err = %v, want %s %s", tc.raw, err, tc.field, tc.why)
		}
	}
}

// FuzzDecodeUsage checks that no input makes the decoder panic, and that
// whatever it accepts encoding/json also accepts as an object.
func FuzzDecodeUsage(f *testing.F) {
	f.Add(mustJSON(f, usageRow()))
	f.Add([]byte(`{"invocation_id":"i","requester":"r","event_time":1,"request_tags":"[{\"key\":\"a\",\"value\":\"b\"}]"}`))
	f.Add([]byte(`{"x":[[[{"\u00e9":"\ud83d\ude00"}]]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeUsage(b); err == nil {
			var m map[string]any
			if json.Unmarshal(b, &m) != nil {
				t.Fatalf("accepted what encoding/json rejects: %q", b)
			}
		}
		_, _ = DecodeTrace(b)
	})
}

// TestDecodeConcurrent decodes from many goroutines at once: the Decode
// functions share pooled decoders (run with -race).
func TestDecodeConcurrent(t *testing.T) {
	lines := bytes.Split(bytes.TrimSpace(genUsageJSONL(400)), []byte("\n"))
	want := make([]schemas.UsageEvent, len(lines))
	for i, l := range lines {
		var err error
		if want[i], err = DecodeUsage(l); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				j := (i + g*50) % len(lines)
				got, err := DecodeUsage(lines[j])
				if err != nil || !reflect.DeepEqual(got, want[j]) {
					t.Errorf("line %d decoded differently: %v", j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
