package report

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
)

// The Databricks report through the real driver, over system.billing.usage
// tables of both layouts a workspace may have: the gateway fields flat (the
// Beta's usage_metadata.ai_gateway_endpoint_name) or in a struct (GA's
// usage_metadata.ai_gateway.endpoint_name). Both give the embedded store's
// report.
func TestDatabricksReportReadsBothBillingLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs against a local warehouse")
	}
	ctx := dbsqltest.Context(t)
	s := fixtureStore(t)
	opt := Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam, ByModel}}
	want := builtMarkdown(t, NewDuckDBSource(s.DB()), opt)
	dir := t.TempDir()
	export := func(name, query string) string {
		p := filepath.Join(dir, name+".parquet")
		if _, err := s.DB().ExecContext(context.Background(), "COPY ("+query+") TO '"+p+"' (FORMAT parquet)"); err != nil {
			t.Fatal(err)
		}
		return p
	}
	attribution := export("attribution", "SELECT * FROM attribution")
	prices := export("prices", "SELECT * FROM billing_list_prices")
	for _, layout := range []struct{ name, query string }{
		{"beta", "SELECT * FROM billing_usage"},
		{"GA", "SELECT * REPLACE (" + gaUsageMetadata + " AS usage_metadata) FROM billing_usage"},
	} {
		t.Run(layout.name, func(t *testing.T) {
			wh := dbsqltest.Start(t, warehouse.Config{})
			for table, file := range map[string]string{"main.obolus.attribution": attribution, "system.billing.list_prices": prices,
				"system.billing.usage": export("usage_"+layout.name, layout.query)} {
				if err := wh.Server.LoadTable(ctx, table, file); err != nil {
					t.Fatal(err)
				}
			}
			tables := DatabricksTables("main", "obolus")
			tables.Calibration = ""
			if got := builtMarkdown(t, Source{DB: dbsqltest.Open(t, wh.Config), Dialect: Databricks, Tables: tables}, opt); got != want {
				t.Errorf("report over the %s layout differs:\n%s\n--- want ---\n%s", layout.name, got, want)
			}
		})
	}
}
