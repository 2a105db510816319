package telemetry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
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
	shutdown, err := Setup(ctx, Exporter{Kind: "otlp", Endpoint: strings.TrimPrefix(srv.URL, "http://"), Insecure: true}, "obolus-test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := otel.Meter("test").Int64Counter("obolus.test.counter")
	c.Add(ctx, 3)
	_, span := otel.Tracer("test").Start(ctx, "test.span")
	span.End()
	if err := shutdown(ctx); err != nil {
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
