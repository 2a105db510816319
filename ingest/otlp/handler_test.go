package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/obolus/obolus/schemas"
)

// fakeExporter records what it is given and answers as told.
type fakeExporter struct {
	mu      sync.Mutex
	got     [][]Span
	result  Result
	err     error
	entered chan struct{} // told when an export starts, if set
	release chan struct{} // an export waits for it, if set
	discard bool          // keep nothing (benchmarks)
}

func (f *fakeExporter) Export(ctx context.Context, spans []Span) (Result, error) {
	if f.discard {
		return Result{}, nil
	}
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, spans)
	return f.result, f.err
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

var (
	traceID = []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	rootID  = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	childID = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73}
)

// request is an MLflow-shaped trace: a root span naming the user, a child
// naming nobody, with a prompt the intake must not keep.
func request() *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "support-bot"), str("obolus.service_principal", "sp-1"), str("host.name", "h")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: traceID, SpanId: rootID, Name: "agent", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: 1793492716704000000, EndTimeUnixNano: 1793492721288000000,
				Attributes: []*commonpb.KeyValue{str("mlflow.trace.user", `"ann@example.com"`), str("session.id", "s-1"),
					str("mlflow.spanInputs", "a long prompt"),
					{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}}}},
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}},
			{TraceId: traceID, SpanId: childID, ParentSpanId: rootID, Name: "ChatModel",
				StartTimeUnixNano: 1793492716933200000, EndTimeUnixNano: 1793492719454400000},
		}}},
	}}}
}

const wantRoot = `{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","name":"agent","kind":"SPAN_KIND_SERVER",` +
	`"start_time_unix_nano":1793492716704000000,"end_time_unix_nano":1793492721288000000,` +
	`"attributes":{"mlflow.trace.user":"\"ann@example.com\"","session.id":"s-1"},"status":{"code":"STATUS_CODE_OK"},` +
	`"resource":{"attributes":{"obolus.service_principal":"sp-1","service.name":"support-bot"}}}`

// jsonBody is request() as OTLP/JSON writes it: hex ids, camelCase, enum
// numbers, 64-bit integers as strings, and a field this build does not know.
const jsonBody = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}},
{"key":"obolus.service_principal","value":{"stringValue":"sp-1"}},{"key":"host.name","value":{"stringValue":"h"}}]},
"scopeSpans":[{"scope":{"name":"x"},"spans":[
{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174","name":"agent","kind":2,
 "startTimeUnixNano":"1793492716704000000","endTimeUnixNano":1793492721288000000,
 "attributes":[{"key":"mlflow.trace.user","value":{"stringValue":"\"ann@example.com\""}},{"key":"session.id","value":{"stringValue":"s-1"}},
  {"key":"mlflow.spanInputs","value":{"stringValue":"a long prompt"}},{"key":"n","value":{"intValue":"7"}}],
 "status":{"code":1},"someFutureField":true},
{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173","parentSpanId":"eee19b7ec3c1b174","name":"ChatModel",
 "startTimeUnixNano":"1793492716933200000","endTimeUnixNano":"1793492719454400000"}]}]}]}`

func protoBody(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(request())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHandler(t *testing.T) {
	pb := protoBody(t)
	huge := bytes.Repeat([]byte{'x'}, 4<<10)
	for _, tc := range []struct {
		name        string
		method      string
		ct, enc     string
		auth        string
		body        []byte
		token       string
		result      Result
		err         error
		wantStatus  int
		wantSpans   int    // spans the exporter got
		wantRetry   bool   // Retry-After set
		wantInError string // in the Status message
		wantPartial int64
	}{
		{name: "protobuf", ct: ContentProtobuf, body: pb, wantStatus: 200, wantSpans: 2},
		{name: "protobuf with parameters", ct: ContentProtobuf + "; charset=binary", body: pb, wantStatus: 200, wantSpans: 2},
		{name: "json", ct: ContentJSON, body: []byte(jsonBody), wantStatus: 200, wantSpans: 2},
		{name: "protobuf gzip", ct: ContentProtobuf, enc: "gzip", body: gz(t, pb), wantStatus: 200, wantSpans: 2},
		{name: "json gzip", ct: ContentJSON, enc: "gzip", body: gz(t, []byte(jsonBody)), wantStatus: 200, wantSpans: 2},
		{name: "empty request", ct: ContentProtobuf, body: nil, wantStatus: 200},
		{name: "bad protobuf", ct: ContentProtobuf, body: []byte{0xff, 0xff, 0xff}, wantStatus: 400, wantInError: "decode OTLP/protobuf body"},
		{name: "bad json", ct: ContentJSON, body: []byte(`{"resourceSpans":[{`), wantStatus: 400, wantInError: "decode OTLP/JSON body"},
		{name: "json id not hex", ct: ContentJSON, body: []byte(strings.Replace(jsonBody, "5B8EFFF798038103D269B633813FC60C", "zz8EFFF798038103D269B633813FC60C", 1)),
			wantStatus: 400, wantInError: "spans[0].traceId: not a hex id"},
		{name: "bad gzip", ct: ContentProtobuf, enc: "gzip", body: pb, wantStatus: 400, wantInError: "gzip"},
		{name: "unknown encoding", ct: ContentProtobuf, enc: "br", body: pb, wantStatus: 415},
		{name: "unknown content type", ct: "text/plain", body: pb, wantStatus: 415},
		{name: "GET", method: http.MethodGet, ct: ContentProtobuf, wantStatus: 405},
		{name: "too large", ct: ContentProtobuf, body: huge, wantStatus: 413, wantInError: "max_body_bytes"},
		{name: "too large once gunzipped", ct: ContentProtobuf, enc: "gzip", body: gz(t, huge), wantStatus: 413, wantInError: "decompressed"},
		{name: "token missing", token: "s3cret", ct: ContentProtobuf, body: pb, wantStatus: 401},
		{name: "token wrong", token: "s3cret", auth: "Bearer s3cres", ct: ContentJSON, body: []byte(jsonBody), wantStatus: 401},
		{name: "token of another scheme", token: "s3cret", auth: "Basic s3cret", ct: ContentProtobuf, body: pb, wantStatus: 401},
		{name: "token right", token: "s3cret", auth: "bearer s3cret", ct: ContentProtobuf, body: pb, wantStatus: 200, wantSpans: 2},
		{name: "partial success", ct: ContentProtobuf, body: pb, result: Result{Rejected: 1, Message: "span x: field end_time_unix_nano"}, wantStatus: 200, wantSpans: 2, wantPartial: 1},
		{name: "partial success json", ct: ContentJSON, body: []byte(jsonBody), result: Result{Rejected: 2, Message: "two"}, wantStatus: 200, wantSpans: 2, wantPartial: 2},
		{name: "kafka down", ct: ContentProtobuf, body: pb, err: errors.New("broker gone"), wantStatus: 503, wantSpans: 2, wantRetry: true, wantInError: "broker gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := &fakeExporter{result: tc.result, err: tc.err}
			h := NewHandler(Config{MaxBodyBytes: 2 << 10, BearerToken: tc.token}, exp)
			r := httptest.NewRequest(cmpOr(tc.method, http.MethodPost), Path, bytes.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ct)
			if tc.enc != "" {
				r.Header.Set("Content-Encoding", tc.enc)
			}
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.wantStatus, w.Body.String())
			}
			if got := len(exp.got); tc.wantSpans > 0 && (got != 1 || len(exp.got[0]) != tc.wantSpans) || tc.wantSpans == 0 && got != 0 {
				t.Fatalf("exporter got %v, want one export of %d spans", exp.got, tc.wantSpans)
			}
			if (w.Header().Get("Retry-After") != "") != tc.wantRetry {
				t.Errorf("Retry-After %q, want set: %v", w.Header().Get("Retry-After"), tc.wantRetry)
			}
			if tc.wantStatus == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.token != "" && strings.Contains(w.Body.String(), tc.token) {
				t.Error("the answer shows the token")
			}
			if tc.wantStatus == 405 {
				return
			}
			// The answer is in the request's encoding (protobuf for a type
			// the handler does not speak).
			ct := tc.ct
			if ct != ContentJSON {
				ct = ContentProtobuf
			}
			if got := w.Header().Get("Content-Type"); got != ct {
				t.Fatalf("content type %q, want %q", got, ct)
			}
			unmarshal := proto.Unmarshal
			if ct == ContentJSON {
				unmarshal = protojson.Unmarshal
			}
			if tc.wantStatus != 200 {
				var st statuspb.Status
				if err := unmarshal(w.Body.Bytes(), &st); err != nil {
					t.Fatalf("error body is not a google.rpc.Status: %v (%q)", err, w.Body.String())
				}
				if st.Code == 0 || !strings.Contains(st.Message, tc.wantInError) {
					t.Errorf("status %v, want a code and %q in the message", &st, tc.wantInError)
				}
				return
			}
			var resp coltracepb.ExportTraceServiceResponse
			if err := unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("answer is not an ExportTraceServiceResponse: %v (%q)", err, w.Body.String())
			}
			if got := resp.GetPartialSuccess().GetRejectedSpans(); got != tc.wantPartial {
				t.Errorf("rejected_spans %d, want %d", got, tc.wantPartial)
			}
			if tc.wantPartial > 0 && resp.GetPartialSuccess().GetErrorMessage() != tc.result.Message {
				t.Errorf("error_message %q, want %q", resp.GetPartialSuccess().GetErrorMessage(), tc.result.Message)
			}
			if tc.wantSpans == 0 {
				return
			}
			// Both encodings give the same rows: the one conversion.
			spans := exp.got[0]
			if string(spans[0].Row) != wantRoot {
				t.Errorf("root row\n got %s\nwant %s", spans[0].Row, wantRoot)
			}
			if spans[1].SpanID != "eee19b7ec3c1b173" || !strings.Contains(string(spans[1].Row), `"parent_span_id":"eee19b7ec3c1b174"`) || spans[1].Err != nil {
				t.Errorf("child span %+v (row %s)", spans[1], spans[1].Row)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestHandlerBackpressure fills the in-flight limit with exports that wait
// on Kafka, and checks that one more request is told to come back (429 with
// Retry-After), that a slow export times out as 503, and that the handler
// takes requests again once the slot is free. No sleeps decide anything:
// the test waits until the exports have started.
func TestHandlerBackpressure(t *testing.T) {
	exp := &fakeExporter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	h := NewHandler(Config{MaxInFlight: 1, RetryAfter: 3 * time.Second, Timeout: time.Hour}, exp)
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func() *http.Response {
		resp, err := http.Post(srv.URL+Path, ContentProtobuf, bytes.NewReader(protoBody(t)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := make(chan *http.Response, 1)
	go func() { first <- post() }()
	<-exp.entered // the one slot is taken, and stays taken until release
	resp := post()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("over the in-flight limit: %d Retry-After %q, want 429 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(exp.release)
	if r := <-first; r.StatusCode != 200 {
		t.Errorf("the waiting export ended %d, want 200", r.StatusCode)
	}
	if r := post(); r.StatusCode != 200 {
		t.Errorf("after the slot was freed: %d, want 200", r.StatusCode)
	}
	if st := h.Stats(); st.Throttled != 1 || st.Requests != 3 {
		t.Errorf("stats %+v, want 1 throttled of 3", st)
	}

	// Kafka that does not answer within the timeout: 503.
	slow := &fakeExporter{release: make(chan struct{})}
	h = NewHandler(Config{Timeout: 10 * time.Millisecond}, slow)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(protoBody(t)))
	r.Header.Set("Content-Type", ContentProtobuf)
	h.ServeHTTP(w, r)
	if r := w.Result(); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "1" {
		t.Errorf("export past its timeout: %d Retry-After %q, want 503 and 1", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// TestRowsAttributeValues: values are rendered as a VARIANT holds them, and
// only the attributes the keys read are kept.
func TestRowsAttributeValues(t *testing.T) {
	req := request()
	sp := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
	sp.Attributes = []*commonpb.KeyValue{
		{Key: "enduser.id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
		{Key: "session.id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
		{Key: "client_request_id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{}}},
		{Key: "user.id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
		str("gen_ai.prompt", "secret prompt"),
	}
	sp.TraceId = []byte{1, 2, 3}
	spans := Rows(nil, req.ResourceSpans, &defaultKeys)
	var row map[string]any
	if err := json.Unmarshal(spans[0].Row, &row); err != nil {
		t.Fatal(err)
	}
	attrs, _ := row["attributes"].(map[string]any)
	if len(attrs) != 3 || attrs["enduser.id"] != 42.0 || attrs["session.id"] != true || attrs["user.id"] != 1.5 {
		t.Errorf("attributes %v", attrs)
	}
	if spans[0].Err == nil || spans[0].Err.Field != "trace_id" {
		t.Errorf("a 3-byte trace id: err %v, want one naming trace_id", spans[0].Err)
	}
}

var defaultKeys = schemas.DefaultSpanKeys

// mlflowRequest is n MLflow-shaped traces (a root naming the user and two
// children naming nobody) of one agent, as its SDK would batch them.
func mlflowRequest(n int, seed byte) *coltracepb.ExportTraceServiceRequest {
	var spans []*tracepb.Span
	for i := range n {
		tid := []byte{seed, byte(i >> 8), byte(i), 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		root := []byte{byte(i >> 8), byte(i), 3, 4, 5, 6, 7, 1}
		start := uint64(1793492716704000000 + i*1000000)
		spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: root, Name: "agent", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: start, EndTimeUnixNano: start + 4e9,
			Attributes: []*commonpb.KeyValue{str("mlflow.traceRequestId", `"tr-0102"`), str("mlflow.spanType", `"AGENT"`),
				str("mlflow.trace.user", `"ann@example.com"`), str("session.id", "2bb7ed6b-9546-43ca-83dd-0e25a78d1c2d"),
				str("client_request_id", "e72feb3f-d0a2-46b5-a2a6-0ab9634900cf"), str("mlflow.spanInputs", strings.Repeat("a prompt ", 40))},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}})
		for c := range 2 {
			spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: []byte{byte(i >> 8), byte(i), 3, 4, 5, 6, 7, byte(2 + c)}, ParentSpanId: root,
				Name: "ChatModel", Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: start + 1e8, EndTimeUnixNano: start + 2e9,
				Attributes: []*commonpb.KeyValue{str("mlflow.spanType", `"CHAT_MODEL"`), str("mlflow.spanOutputs", strings.Repeat("an answer ", 40))}})
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "support-bot"), str("obolus.service_principal", "sp-1")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

// BenchmarkHandler is the intake's own cost per request of 510 spans
// (decode, convert, answer), with an exporter that does nothing.
func BenchmarkHandler(b *testing.B) {
	for _, enc := range []string{ContentProtobuf, ContentJSON} {
		b.Run(enc, func(b *testing.B) {
			req := mlflowRequest(170, 1)
			var body []byte
			var err error
			if enc == ContentJSON {
				body, err = protojson.Marshal(req)
			} else {
				body, err = proto.Marshal(req)
			}
			if err != nil {
				b.Fatal(err)
			}
			h := NewHandler(Config{}, &fakeExporter{discard: true})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
				r.Header.Set("Content-Type", enc)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(b.N)*510/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// FuzzHandler: no body, in either encoding, gzip or not, may panic the
// handler, and every answer is 200 or 400 (the exporter accepts all).
func FuzzHandler(f *testing.F) {
	pb, err := proto.Marshal(request())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb, false, false)
	f.Add([]byte(jsonBody), true, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"zz","startTimeUnixNano":"-1"}]}]}]}`), true, false)
	f.Add([]byte{0x1f, 0x8b, 0x08}, false, true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON, isGzip bool) {
		h := NewHandler(Config{MaxBodyBytes: 1 << 20}, &fakeExporter{discard: true})
		r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", ContentProtobuf)
		if isJSON {
			r.Header.Set("Content-Type", ContentJSON)
		}
		if isGzip {
			r.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 && w.Code != 400 && w.Code != 413 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
