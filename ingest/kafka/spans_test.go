package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/ingest/otlp"
	"github.com/obolus/obolus/internal/stream"
	"github.com/obolus/obolus/schemas"
)

// Span rows as the OTLP intake writes them (and a span table holds them).
const (
	spanRoot = `{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","start_time_unix_nano":1793527200000000000,` +
		`"end_time_unix_nano":1793527201500000000,"attributes":{"mlflow.trace.user":"\"ann@example.com\"","session.id":"s-1","client_request_id":"ar-9"},` +
		`"status":{"code":"STATUS_CODE_OK"},"resource":{"attributes":{"service.name":"bot2","obolus.service_principal":"sp-res"}}}`
	spanChild = `{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b173","parent_span_id":"eee19b7ec3c1b174",` +
		`"start_time_unix_nano":1793527200100000000,"end_time_unix_nano":1793527200200000000,"resource":{"attributes":{"service.name":"bot2"}}}`
	spanBackwards = `{"trace_id":"5b8efff798038103d269b633813fc60d","span_id":"eee19b7ec3c1b172","start_time_unix_nano":1793527201500000000,` +
		`"end_time_unix_nano":1793527200000000000,"resource":{"attributes":{"service.name":"bot2","obolus.service_principal":"sp-res"}}}`
	spanNoPrincipal = `{"trace_id":"5b8efff798038103d269b633813fc60e","span_id":"eee19b7ec3c1b171","start_time_unix_nano":1793527200000000000,` +
		`"end_time_unix_nano":1793527201500000000,"attributes":{"enduser.id":"bo"},"resource":{"attributes":{"service.name":"nobody"}}}`
)

// TestDecodeSpans: the rekey decoder reads span rows with the span table's
// decoder: a root span is an agent request keyed by its principal, a child
// naming nobody is skipped (no key, no dead letter), and the configured
// principal of the agent wins over the span's resource.
func TestDecodeSpans(t *testing.T) {
	d := testDecoder()
	rec, key, dl := d.Decode(msg("a", spanRoot, HeaderKind, "otel_spans"))
	if dl != nil || rec.Kind != stream.KindAgent || key != "sp-res" {
		t.Fatalf("root span: %+v key %q dead %+v", rec, key, dl)
	}
	want, err := ingest.DecodeSpanRequest([]byte(spanRoot), &schemas.DefaultSpanKeys, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Agent != want || want.EndUser != "ann@example.com" || want.AgentRequestID != "ar-9" || want.DurationMS != 1500 || want.AgentEndpoint != "bot2" {
		t.Errorf("root span decoded as %+v, want the span table's %+v", rec.Agent, want)
	}
	// Without the header, a row with span_id is a span.
	if _, key, dl := d.Decode(msg("a", spanRoot)); dl != nil || key != "sp-res" {
		t.Errorf("sniffed span: key %q dead %+v", key, dl)
	}
	if rec, key, dl := d.Decode(msg("a", spanChild, HeaderKind, "otel_spans")); dl != nil || key != "" || rec.Kind != 0 {
		t.Errorf("child span: %+v key %q dead %+v, want skipped", rec, key, dl)
	}
	d.ServicePrincipals["bot2"] = "sp-configured"
	if rec, key, _ := d.Decode(msg("a", spanRoot, HeaderKind, "otel_spans")); key != "sp-configured" || rec.Agent.ServicePrincipal != "sp-configured" {
		t.Errorf("configured principal: key %q, want sp-configured over the resource's", key)
	}
	if _, key, _ := d.Decode(msg("a", spanRoot, HeaderKind, "otel_spans", HeaderServicePrincipal, "sp-h")); key != "sp-h" {
		t.Errorf("header principal: key %q, want sp-h", key)
	}
	_, _, dl = d.Decode(msg("a", spanNoPrincipal, HeaderKind, "otel_spans"))
	if dl == nil || dl.Field != "resource.attributes.obolus.service_principal" {
		t.Errorf("span without principal: dead letter %+v, want one naming resource.attributes.obolus.service_principal", dl)
	}
}

// msgRecorder is a MessageWriter that keeps what it is given.
type msgRecorder struct {
	msgs []kafka.Message
	err  error
}

func (r *msgRecorder) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func TestSpanIntake(t *testing.T) {
	agents, dead := &msgRecorder{}, &msgRecorder{}
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	in := &SpanIntake{Decoder: testDecoder(), Agents: agents, Dead: dead, Counts: &SpanCounts{}, Clock: func() time.Time { return at }}
	spans := []otlp.Span{
		{TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b174", Row: []byte(spanRoot)},
		{TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b173", Row: []byte(spanChild)},
		{TraceID: "5b8efff798038103d269b633813fc60d", SpanID: "eee19b7ec3c1b172", Row: []byte(spanBackwards)},
		{TraceID: "010203", SpanID: "eee19b7ec3c1b170", Row: []byte(`{}`), Err: &ingest.FieldError{Field: "trace_id", Reason: "3 bytes, want 16"}},
	}
	res, err := in.Export(context.Background(), spans)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 2 || !strings.Contains(res.Message, "span eee19b7ec3c1b172 of trace 5b8efff798038103d269b633813fc60d") ||
		!strings.Contains(res.Message, "end_time_unix_nano") || !strings.Contains(res.Message, "1 more") {
		t.Errorf("result %+v, want 2 rejected naming the first's span and field", res)
	}
	if len(agents.msgs) != 1 || string(agents.msgs[0].Value) != spanRoot || string(agents.msgs[0].Key) != spans[0].TraceID ||
		!agents.msgs[0].Time.Equal(at) || header(&agents.msgs[0], HeaderKind) != "otel_spans" {
		t.Fatalf("produced %+v, want the root span, keyed by trace id, at the produce time, kind otel_spans", agents.msgs)
	}
	if len(dead.msgs) != 2 {
		t.Fatalf("dead-lettered %d, want 2", len(dead.msgs))
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(dead.msgs[0].Value, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Source != SourceOTLP || dl.Location != "trace 5b8efff798038103d269b633813fc60d span eee19b7ec3c1b172" || dl.Field != "end_time_unix_nano" ||
		dl.Kind != schemas.KindAgentRequest || dl.Record != spanBackwards || string(dead.msgs[0].Key) != SourceOTLP+"/5b8efff798038103d269b633813fc60d/eee19b7ec3c1b172" {
		t.Errorf("dead letter %+v key %s", dl, dead.msgs[0].Key)
	}
	if err := json.Unmarshal(dead.msgs[1].Value, &dl); err != nil || dl.Field != "trace_id" {
		t.Errorf("second dead letter %+v (%v), want trace_id", dl, err)
	}
	if c := in.Counts; c.Produced.Load() != 1 || c.Skipped.Load() != 1 || c.Dead.Load() != 2 {
		t.Errorf("counts produced %d skipped %d dead %d, want 1 1 2", c.Produced.Load(), c.Skipped.Load(), c.Dead.Load())
	}
	// What the intake produced, the rekey stage reads as the same request.
	m := agents.msgs[0]
	m.Topic = "a"
	if _, key, dl := in.Decoder.Decode(&m); dl != nil || key != "sp-res" {
		t.Errorf("rekeying the produced span: key %q dead %+v", key, dl)
	}

	// Kafka failing: an error, so the client is told to retry.
	agents.err = errors.New("not enough replicas")
	if _, err := in.Export(context.Background(), spans[:1]); err == nil || !strings.Contains(err.Error(), "not enough replicas") {
		t.Errorf("export with Kafka failing: %v", err)
	}
}

// TestRekeySkippedBatchBroadcasts: a full batch of spans that are all
// skipped (child spans) writes nothing to the keyed topic, but must still
// broadcast its claim; otherwise the partition's claim stays at its start
// and waitForSlowest holds every partition of the process for it (a hang
// found replaying span tables through obolus dev).
func TestRekeySkippedBatchBroadcasts(t *testing.T) {
	keyed, progress, dead := &msgRecorder{}, &msgRecorder{}, &msgRecorder{}
	rk := &Rekeyer{Decoder: testDecoder(), Keyed: keyed, Dead: dead, Progress: progress, KeyedPartitions: 2, Sources: 2,
		ProducerDelay: time.Second, MaxLead: 2 * time.Second, FlushAt: 500, Counts: &RekeyCounts{}, Log: slog.New(slog.DiscardHandler)}
	h, _, err := rk.Open(context.Background(), "a", 0, Committed{Offset: -1})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]kafka.Message, BatchMax)
	for i := range batch {
		batch[i] = *msg("a", spanChild, HeaderKind, "otel_spans")
		batch[i].Offset, batch[i].Time = int64(i), time.Unix(1000, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if rk.Counts.Skipped.Load() != BatchMax || len(keyed.msgs) != 0 || len(progress.msgs) != 2 {
		t.Fatalf("skipped %d, keyed %d, progress %d: want %d skipped and a claim to both keyed partitions",
			rk.Counts.Skipped.Load(), len(keyed.msgs), len(progress.msgs), BatchMax)
	}
	// The next batch is not held back by the partition's own stale claim.
	if err := h.Handle(ctx, batch[:1]); err != nil {
		t.Fatalf("second batch: %v", err)
	}
}

// stalledWriter is a broker that does not answer: it waits for the context.
type stalledWriter struct{}

func (stalledWriter) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestSpanIntakeBackpressure: behind the OTLP handler, a Kafka that does not
// acknowledge within stream.otlp.timeout makes the request a 503 with
// Retry-After, which OTLP clients retry.
func TestSpanIntakeBackpressure(t *testing.T) {
	in := &SpanIntake{Decoder: testDecoder(), Agents: stalledWriter{}, Dead: stalledWriter{}, Counts: &SpanCounts{}}
	h := otlp.NewHandler(otlp.Config{Timeout: 50 * time.Millisecond, RetryAfter: 2 * time.Second, Log: slog.New(slog.DiscardHandler)}, in)
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"obolus.service_principal","value":{"stringValue":"sp"}}]},
		"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
		"startTimeUnixNano":"1793527200000000000","endTimeUnixNano":"1793527201000000000","attributes":[{"key":"enduser.id","value":{"stringValue":"ann"}}]}]}]}]}`
	r := httptest.NewRequest(http.MethodPost, otlp.Path, strings.NewReader(body))
	r.Header.Set("Content-Type", otlp.ContentJSON)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" || w.Header().Get("Content-Type") != otlp.ContentJSON {
		t.Errorf("stalled Kafka: %d Retry-After %q %s, want 503, 2 and JSON", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Content-Type"))
	}
	if h.Stats().Failed != 1 || in.Counts.Produced.Load() != 0 {
		t.Errorf("stats %+v produced %d, want one failed request and nothing counted as produced", h.Stats(), in.Counts.Produced.Load())
	}
}
