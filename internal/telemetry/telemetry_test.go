package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// TestOTLPExportReachesCollector runs the real OTLP/HTTP exporters against a
// local HTTP endpoint standing in for a collector, and checks that metrics
// and spans arrive as protobuf on the standard paths.
func TestOTLPExportReachesCollector(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Content-Type") == "application/x-protobuf" {
			got[r.URL.Path]++
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()

	ctx := context.Background()
	tel, err := Setup(ctx, Exporter{Kind: "otlp", Endpoint: strings.TrimPrefix(srv.URL, "http://"), Insecure: true}, "obolus-test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := otel.Meter("test").Int64Counter("obolus.test.counter")
	c.Add(ctx, 3)
	_, span := otel.Tracer("test").Start(ctx, "test.span")
	span.End()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/v1/metrics"] == 0 || got["/v1/traces"] == 0 {
		t.Errorf("collector received %v, want both /v1/metrics and /v1/traces", got)
	}
}

func TestLoggerRedactsSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, "info", "json")
	log.Info("connect", "host", "example.cloud.databricks.com", "token", "dapi-very-secret", "client_secret", "s3cr3t")
	out := buf.String()
	if strings.Contains(out, "dapi-very-secret") || strings.Contains(out, "s3cr3t") {
		t.Errorf("secret reached the log: %s", out)
	}
	if !strings.Contains(out, "example.cloud.databricks.com") {
		t.Errorf("non-secret attribute lost: %s", out)
	}
}

// TestPrometheusHandler records through the provider Setup returns and reads
// the handler's exposition: the names Prometheus sees are the ones
// docs/streaming.md lists (dots become underscores, counters gain _total,
// a unit in seconds gains _seconds, an annotation unit such as {message}
// adds nothing), beside the process and Go runtime figures.
func TestPrometheusHandler(t *testing.T) {
	ctx := context.Background()
	tel, err := Setup(ctx, Exporter{Kind: "none", Prometheus: true}, "obolus-test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	m := tel.Meter("test")
	c, _ := m.Int64Counter("obolus.test.answers", metric.WithUnit("{answer}"))
	c.Add(ctx, 3, metric.WithAttributes(attribute.String("match_method", "trace_id")))
	h, _ := m.Float64Histogram("obolus.test.latency", metric.WithUnit("s"))
	h.Record(ctx, 0.25)
	g, _ := m.Int64Gauge("obolus.test.lag", metric.WithUnit("{message}"))
	g.Record(ctx, 7)

	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`obolus_test_answers_total{match_method="trace_id"} 3`,
		`obolus_test_latency_seconds_count 1`,
		`obolus_test_lag 7`,
		"process_resident_memory_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestNoneInstallsNoHandler(t *testing.T) {
	tel, err := Setup(context.Background(), Exporter{Kind: "none"}, "obolus-test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tel.Metrics != nil {
		t.Error("exporter none without Prometheus serves metrics")
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// A short command's figures land in telemetry.metrics_file when it shuts
// down: obolus's instruments only, in the Prometheus text format.
func TestMetricsFileAtShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obolus.prom")
	tel, err := Setup(context.Background(), Exporter{Kind: "none", MetricsFile: path}, "obolus", "test", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tel.Meter("test").Int64Counter("obolus.test.rows")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 7)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "obolus_test_rows_total 7") || strings.Contains(string(b), "go_goroutines") {
		t.Errorf("metrics file:\n%s", b)
	}
}
