package warehouse

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/telemetry"
)

// TestMetricsEndpoint queries the server through the real driver and reads
// GET /metrics, which needs no token (Prometheus scrapes without one): the
// calls the query made are counted by method, and the open sessions shown.
func TestMetricsEndpoint(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Exporter{Kind: "none", Prometheus: true}, "warehouse-test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	s := startServer(t, Config{Meter: tel.Meter("test"), Metrics: tel.Metrics})
	db := openDB(t, s)
	var n int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.baseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	for _, want := range []string{`obolus_warehouse_calls_total{method="ExecuteStatement"} 1`, "obolus_warehouse_sessions 1", "obolus_warehouse_operations "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}
