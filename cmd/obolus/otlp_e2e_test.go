package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/obolus/obolus/ingest"
	kafkaingest "github.com/obolus/obolus/ingest/kafka"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/devbroker"
	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
)

// TestStreamOTLPMatchesBatch sends a generated workload's agent logs into a
// running `obolus dev` through its OTLP/HTTP intake with a client obolus did
// not write — the OpenTelemetry Go SDK and its otlptracehttp exporter —
// as MLflow-shaped traces (a root span per agent request naming the user,
// child spans naming nobody), one SDK tracer provider per agent, in
// protobuf and in JSON, gzip-compressed and not, with a bearer token. Then
// it replays the usage. Once the stream has drained, every invocation's
// answer must be the batch answer over the same workload's span tables.
func TestStreamOTLPMatchesBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	f := newStreamFixture(t, synth.Config{Seed: 11, AgentRequests: 1500, Duration: 6 * time.Hour, AgentLogs: synth.AgentLogsOTel})
	const token = "otlp-test-token"
	t.Setenv("OBOLUS_STREAM_OTLP_BEARER_TOKEN", token)
	want := f.batchAnswers()

	cfg, err := config.Load(config.New(), f.config)
	if err != nil {
		t.Fatal(err)
	}
	var usage, spanFiles []ingest.Spec
	for _, s := range app.Specs(cfg) {
		if s.Kind == ingest.KindOTelSpans {
			spanFiles = append(spanFiles, s)
		} else {
			usage = append(usage, s)
		}
	}
	traces := readSpanRows(t, spanFiles)

	broker, httpAddr, otlpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(broker)
	stop := f.inProcess("dev", "--config", f.config, "--port", port, "--http", httpAddr, "--otlp", otlpAddr)
	stopped := false
	defer func() {
		if !stopped {
			_ = stop()
		}
	}()
	waitFor(t, 60*time.Second, "obolus dev ready", func() bool {
		r, err := statusAt(httpAddr)
		return err == nil && r.Ready && r.OTLP != nil
	})

	// A wrong token is refused, and the SDK says so.
	bad := exportTraces(otlpAddr, "wrong", traces[:1], otlptracehttp.EncodingProtobuf, false)
	if bad.err == nil {
		t.Fatal("export with a wrong bearer token succeeded")
	}
	began := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(traces))
	for i, agent := range traces {
		enc := otlptracehttp.EncodingProtobuf
		if i%2 == 1 {
			enc = otlptracehttp.EncodingJSON
		}
		wg.Go(func() {
			r := exportTraces(otlpAddr, token, []agentTraces{agent}, enc, i%3 != 2)
			sent.Add(r.spans)
			if r.err != nil {
				errs <- fmt.Errorf("agent %s (%v): %w", agent.endpoint, enc, r.err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	var roots, all int64
	for _, a := range traces {
		for _, tr := range a.traces {
			all += int64(len(tr))
			roots++
		}
	}
	if sent.Load() != all {
		t.Fatalf("the SDK exported %d spans, the workload has %d", sent.Load(), all)
	}
	t.Logf("exported %d spans (%d traces) with the OpenTelemetry SDK in %s: %.0f spans/s", all, roots, elapsed.Round(time.Millisecond), float64(all)/elapsed.Seconds())
	st, err := statusAt(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if o := st.OTLP; o.Produced != roots || o.Skipped != all-roots || o.Rejected != 0 || o.DeadLetters != 0 || o.Denied < 1 {
		t.Fatalf("intake status %+v: want %d produced, %d skipped, none rejected, the wrong token denied", *o, roots, all-roots)
	}

	// A malformed span (it ends before it starts) beside a good child
	// span: partial success, and a dead letter naming the field and span.
	malformed := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}},
		{"key":"obolus.service_principal","value":{"stringValue":"sp-x"}}]},"scopeSpans":[{"spans":[
		{"traceId":"00000000000000000000000000000bad","spanId":"0000000000000bad","startTimeUnixNano":"1793527201500000000","endTimeUnixNano":"1793527200000000000",
		 "attributes":[{"key":"enduser.id","value":{"stringValue":"mallory"}}]},
		{"traceId":"00000000000000000000000000000bad","spanId":"0000000000000bae","parentSpanId":"0000000000000bad",
		 "startTimeUnixNano":"1793527200000000000","endTimeUnixNano":"1793527201000000000"}]}]}]}`
	req, err := http.NewRequest(http.MethodPost, "http://"+otlpAddr+"/v1/traces", strings.NewReader(malformed))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var partial struct {
		PartialSuccess struct {
			RejectedSpans json.Number `json:"rejectedSpans"`
			ErrorMessage  string      `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	if err := json.Unmarshal(body, &partial); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		partial.PartialSuccess.RejectedSpans != "1" || !strings.Contains(partial.PartialSuccess.ErrorMessage, "end_time_unix_nano") ||
		!strings.Contains(partial.PartialSuccess.ErrorMessage, "0000000000000bad") {
		t.Fatalf("malformed span: %d %s %s (%v), want 200 with one rejected span naming the field and span", resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
	}

	// The usage comes after the agent logs it was logged for (agent logs
	// that lead usage are held for it: docs/streaming.md).
	replayed, err := devbroker.Replay(context.Background(), kafkaingest.Options{Brokers: []string{broker}, ClientID: "obolus-test"},
		devbroker.ReplayOptions{Sources: usage, UsageTopic: topicUsage, AgentsTopic: topicAgents})
	if err != nil {
		t.Fatal(err)
	}
	// Every usage message re-keyed, then every stage caught up (answered,
	// loaded) and nothing moving any more.
	waitFor(t, 120*time.Second, "usage re-keyed", func() bool {
		r, err := statusAt(httpAddr)
		return err == nil && r.Rekey.Usage >= int64(replayed.Usage)
	})
	if err := waitStatusDrained(120*time.Second, 2*time.Second, httpAddr); err != nil {
		t.Fatal(err)
	}
	compareAnswers(t, "output topic", outputAnswers(t, topicMessages(t, broker, topicOutput)), want)
	dead := topicMessages(t, broker, topicDead)
	if len(dead) != 1 || !strings.Contains(string(dead[0].Value), `"location":"trace 00000000000000000000000000000bad span 0000000000000bad"`) ||
		!strings.Contains(string(dead[0].Value), `"field":"end_time_unix_nano"`) {
		t.Errorf("dead letters %d, want the one malformed span's", len(dead))
		for _, m := range dead[:min(3, len(dead))] {
			t.Logf("dead letter: %s", m.Value)
		}
	}
	stopped = true
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := storeAnswers(t, filepath.Join(f.dir, synth.StoreFile))
	compareAnswers(t, "store", got, want)
	reconcile(t, f.dir, got)
	scoreAnswers(t, f.dir, got)
}

// scoreAnswers scores answers against the workload's ground truth: the bars
// of the batch path, and id-based methods never wrong.
func scoreAnswers(t *testing.T, dir string, got map[string][]schemas.Attribution) {
	t.Helper()
	truth, err := score.LoadTruth(filepath.Join(dir, synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	var rows []score.Row
	for _, rs := range got {
		for _, r := range rs {
			rows = append(rows, score.Row{InvocationID: r.InvocationID, EndUser: r.EndUser, MatchMethod: r.MatchMethod, Weight: r.Weight})
		}
	}
	rep := score.Score(truth, rows)
	t.Logf("precision %.4f recall %.4f", rep.Precision, rep.Recall)
	if rep.Precision < 0.99 || rep.Recall < 0.95 || rep.Missing != 0 || rep.Unknown != 0 || rep.Overweight != 0 {
		t.Errorf("precision %.4f recall %.4f missing %d unknown %d overweight %d; want ≥ 0.99, ≥ 0.95 and none",
			rep.Precision, rep.Recall, rep.Missing, rep.Unknown, rep.Overweight)
	}
	for _, m := range rep.Methods {
		if schemas.IDMethod(m.Method) && m.Invocations > 0 && m.Precision != 1 {
			t.Errorf("%s precision %.6f, want 1 for an id-based method", m.Method, m.Precision)
		}
	}
}

// waitFor polls cond until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// spanRow is what the test reads of a generated span table row (v2, JSONL).
type spanRow struct {
	TraceID      string         `json:"trace_id"`
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Start        int64          `json:"start_time_unix_nano"`
	End          int64          `json:"end_time_unix_nano"`
	Attributes   map[string]any `json:"attributes"`
	Status       struct {
		Code string `json:"code"`
	} `json:"status"`
	Resource struct {
		Attributes map[string]any `json:"attributes"`
	} `json:"resource"`
}

// agentTraces are one agent's traces (spans root first), under its resource.
type agentTraces struct {
	endpoint string
	resource map[string]any
	traces   [][]spanRow
}

func readSpanRows(t *testing.T, specs []ingest.Spec) []agentTraces {
	t.Helper()
	byAgent := map[string]*agentTraces{}
	for _, s := range specs {
		files, err := filepath.Glob(s.Path)
		if err != nil || len(files) == 0 {
			t.Fatalf("span source %s: %v", s.Path, err)
		}
		for _, path := range files {
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(fh)
			sc.Buffer(nil, 1<<20)
			traceAt := map[string]int{}
			for sc.Scan() {
				var r spanRow
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				ep := fmt.Sprint(r.Resource.Attributes["service.name"])
				a := byAgent[ep]
				if a == nil {
					a = &agentTraces{endpoint: ep, resource: r.Resource.Attributes}
					byAgent[ep] = a
				}
				i, ok := traceAt[r.TraceID]
				if !ok {
					i = len(a.traces)
					traceAt[r.TraceID] = i
					a.traces = append(a.traces, nil)
				}
				a.traces[i] = append(a.traces[i], r)
			}
			fh.Close()
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out []agentTraces
	for _, ep := range slices.Sorted(maps.Keys(byAgent)) {
		a := byAgent[ep]
		for _, tr := range a.traces {
			// Root first: children are started inside it.
			slices.SortStableFunc(tr, func(x, y spanRow) int {
				return boolInt(x.ParentSpanID != "") - boolInt(y.ParentSpanID != "")
			})
		}
		out = append(out, *a)
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fixedIDs makes the SDK use the workload's trace and span ids, which the
// context of each span's start carries.
type fixedIDs struct{}

type idsKey struct{}

type spanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

func (fixedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	v := ctx.Value(idsKey{}).(spanIDs)
	return v.trace, v.span
}

func (fixedIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	return ctx.Value(idsKey{}).(spanIDs).span
}

// countingExporter counts the spans its exporter got acknowledged.
type countingExporter struct {
	sdktrace.SpanExporter
	spans atomic.Int64
	mu    sync.Mutex
	err   error
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		c.mu.Lock()
		c.err = errors.Join(c.err, err)
		c.mu.Unlock()
		return err
	}
	c.spans.Add(int64(len(spans)))
	return nil
}

type exportResult struct {
	spans int64
	err   error
}

// exportTraces sends the agents' traces through one SDK tracer provider
// per agent (its resource), as an instrumented agent would, and returns
// once they are exported (or failed). It runs on other goroutines than the
// test's, so it reports errors rather than failing the test.
func exportTraces(addr, token string, agents []agentTraces, enc otlptracehttp.Encoding, gzip bool) exportResult {
	ctx := context.Background()
	var res exportResult
	for _, a := range agents {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure(), otlptracehttp.WithEncoding(enc),
			otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + token}),
			otlptracehttp.WithTimeout(30 * time.Second),
			// 429 and 503 (the intake's backpressure) are retried.
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: token != "wrong", InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, MaxElapsedTime: 60 * time.Second})}
		if gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return exportResult{err: err}
		}
		ce := &countingExporter{SpanExporter: exp}
		var attrs []attribute.KeyValue
		for k, v := range a.resource {
			attrs = append(attrs, attrOf(k, v))
		}
		n := 0
		for _, tr := range a.traces {
			n += len(tr)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(attrs...)), sdktrace.WithIDGenerator(fixedIDs{}),
			sdktrace.WithBatcher(ce, sdktrace.WithMaxQueueSize(n+1), sdktrace.WithBlocking(), sdktrace.WithMaxExportBatchSize(512)))
		tracer := tp.Tracer("mlflow")
		for _, tr := range a.traces {
			var rootCtx context.Context
			for _, s := range tr {
				var ids spanIDs
				_, terr := hex.Decode(ids.trace[:], []byte(s.TraceID))
				_, serr := hex.Decode(ids.span[:], []byte(s.SpanID))
				if err := errors.Join(terr, serr); err != nil {
					return exportResult{err: fmt.Errorf("trace %s span %s: %w", s.TraceID, s.SpanID, err)}
				}
				parent := context.WithValue(ctx, idsKey{}, ids)
				if s.ParentSpanID != "" {
					parent = context.WithValue(rootCtx, idsKey{}, ids)
				}
				var sattrs []attribute.KeyValue
				for k, v := range s.Attributes {
					sattrs = append(sattrs, attrOf(k, v))
				}
				kind := trace.SpanKindInternal
				switch s.Kind {
				case "SPAN_KIND_SERVER":
					kind = trace.SpanKindServer
				case "SPAN_KIND_CLIENT":
					kind = trace.SpanKindClient
				}
				sctx, span := tracer.Start(parent, s.Name, trace.WithTimestamp(time.Unix(0, s.Start)), trace.WithSpanKind(kind), trace.WithAttributes(sattrs...))
				if s.ParentSpanID == "" {
					rootCtx = sctx
				}
				switch s.Status.Code {
				case "STATUS_CODE_OK":
					span.SetStatus(codes.Ok, "")
				case "STATUS_CODE_ERROR":
					span.SetStatus(codes.Error, "failed")
				}
				span.End(trace.WithTimestamp(time.Unix(0, s.End)))
			}
		}
		if err := tp.ForceFlush(ctx); err != nil {
			res.err = errors.Join(res.err, err)
		}
		if err := tp.Shutdown(ctx); err != nil {
			res.err = errors.Join(res.err, err)
		}
		res.spans += ce.spans.Load()
		res.err = errors.Join(res.err, ce.err)
	}
	return res
}

// attrOf is a span table value as the SDK attribute an agent would set.
func attrOf(k string, v any) attribute.KeyValue {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) {
			return attribute.Int64(k, int64(x))
		}
		return attribute.Float64(k, x)
	case bool:
		return attribute.Bool(k, x)
	}
	return attribute.String(k, fmt.Sprint(v))
}

// TestStreamSpanRowsMatchBatch replays a workload whose agent logs are span
// tables (gen --agent-logs otel) through `obolus dev`: span rows on the
// agent topic (obolus-kind: otel_spans), child spans among them, read by the
// span table's decoder. The answers must be batch's.
func TestStreamSpanRowsMatchBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	f := newStreamFixture(t, synth.Config{Seed: 17, AgentRequests: 1500, Duration: 6 * time.Hour, AgentLogs: synth.AgentLogsOTel})
	f.setenv()
	want := f.batchAnswers()
	out := mustObolus(t, "dev", "--workload", f.dir, "--exit-when-done", "--port", "0", "--http", "127.0.0.1:0")
	t.Log(out)
	got := storeAnswers(t, filepath.Join(f.dir, synth.StoreFile))
	compareAnswers(t, "stream store", got, want)
	reconcile(t, f.dir, got)
	scoreAnswers(t, f.dir, got)
}
