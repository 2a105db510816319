package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// BenchmarkOTLPIntake measures spans accepted per second by a running
// `obolus dev` (in-process broker, worker with rekey and join): concurrent
// clients post OTLP/protobuf requests of 510 MLflow-shaped spans (170
// traces: a root naming the user with a 400-byte prompt attribute, two
// children), and a request counts once it is answered 200, i.e. its agent
// requests are acknowledged by the broker. The worker's stages share the
// two cores, as they do in `obolus dev`.
//
//	go test ./cmd/obolus -run '^$' -bench BenchmarkOTLPIntake -benchtime 400x
func BenchmarkOTLPIntake(b *testing.B) {
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "obolus.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: {duckdb: "+filepath.Join(dir, "obolus.duckdb")+"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	broker, httpAddr, otlpAddr := freeAddrB(b), freeAddrB(b), freeAddrB(b)
	_, port, _ := net.SplitHostPort(broker)
	b.Setenv("OBOLUS_LOG_LEVEL", "warn")
	b.Setenv("OBOLUS_STREAM_PARTITIONS", "6")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"dev", "--config", cfgPath, "--port", port, "--http", httpAddr, "--otlp", otlpAddr, "--duckdb=false"})
		root.SetOut(os.Stderr)
		done <- root.ExecuteContext(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := statusAt(httpAddr); err == nil && r.Ready && r.OTLP != nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("obolus dev not ready within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Distinct trace ids per request, built before the clock runs.
	bodies := make([][]byte, 64)
	for i := range bodies {
		var err error
		if bodies[i], err = proto.Marshal(benchRequest(170, i)); err != nil {
			b.Fatal(err)
		}
	}
	url := "http://" + otlpAddr + "/v1/traces"
	var next, throttled atomic.Int64
	b.ResetTimer()
	b.SetParallelism(2) // 4 clients on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		cl := &http.Client{Timeout: 30 * time.Second}
		for pb.Next() {
			body := bodies[next.Add(1)%int64(len(bodies))]
			for {
				resp, err := cl.Post(url, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				throttled.Add(1) // told to come back: the client retries
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)*510/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(throttled.Load()), "retries")
	if r, err := statusAt(httpAddr); err == nil && r.OTLP != nil {
		b.Logf("intake: %s", strings.TrimSpace(fmt.Sprintf("%+v", *r.OTLP)))
	}
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func benchKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// benchRequest is n MLflow-shaped traces of one agent, trace ids drawn
// from seed.
func benchRequest(n, seed int) *coltracepb.ExportTraceServiceRequest {
	var spans []*tracepb.Span
	now := uint64(time.Now().Add(-time.Hour).UnixNano())
	for i := range n {
		tid := []byte{byte(seed >> 8), byte(seed), byte(i >> 8), byte(i), 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		root := []byte{byte(seed), byte(i >> 8), byte(i), 4, 5, 6, 7, 1}
		start := now + uint64(i)*1e6
		spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: root, Name: "agent", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: start, EndTimeUnixNano: start + 4e9,
			Attributes: []*commonpb.KeyValue{benchKV("mlflow.spanType", `"AGENT"`), benchKV("mlflow.trace.user", fmt.Sprintf(`"user-%d@example.com"`, i%50)),
				benchKV("session.id", fmt.Sprintf("s-%d-%d", seed, i)), benchKV("client_request_id", fmt.Sprintf("r-%d-%d", seed, i)),
				benchKV("mlflow.spanInputs", strings.Repeat("a prompt ", 45))},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}})
		for c := range 2 {
			spans = append(spans, &tracepb.Span{TraceId: tid, SpanId: []byte{byte(seed), byte(i >> 8), byte(i), 4, 5, 6, 7, byte(2 + c)}, ParentSpanId: root,
				Name: "ChatModel", Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: start + 1e8, EndTimeUnixNano: start + 2e9,
				Attributes: []*commonpb.KeyValue{benchKV("mlflow.spanType", `"CHAT_MODEL"`), benchKV("mlflow.spanOutputs", strings.Repeat("an answer ", 40))}})
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{benchKV("service.name", "support-bot"), benchKV("obolus.service_principal", "sp-bench")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}
