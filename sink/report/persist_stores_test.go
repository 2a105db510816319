package report_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/databricks"
	"github.com/obolus/obolus/sink/report"
	"github.com/obolus/obolus/sink/storetest"
)

// restateSQL doubles the quantity of the bill's first record and marks it
// a restatement, as Databricks restates a record.
const restateSQL = `UPDATE billing_usage SET usage_quantity = usage_quantity * 2, record_type = 'RESTATEMENT'
WHERE record_id = (SELECT min(record_id) FROM billing_usage)`

// TestAllocationConformance runs the cost_allocation suite on both stores
// over the fixture workload and bill: the embedded store in a temporary
// directory, and the Delta tables through the real driver against the
// local warehouse (obolus init's DDL, the bill in system.billing.*). Both
// derive the same bill snapshot id.
func TestAllocationConformance(t *testing.T) {
	p := report.MustPeriod(t, "2026-11")
	var snapshot string
	t.Run("duckdb", func(t *testing.T) {
		storetest.RunAllocation(t, func(t *testing.T) storetest.AllocationEnv {
			s := report.FixtureStore(t)
			return storetest.AllocationEnv{
				Source: report.NewDuckDBSource(s.DB()),
				Table:  report.AllocationTable{DB: s.DB(), Dialect: report.DuckDB, Table: "cost_allocation"},
				Restate: func(t *testing.T) {
					if _, err := s.DB().Exec(restateSQL); err != nil {
						t.Fatal(err)
					}
				},
			}
		}, storetest.AllocationOptions{Period: p, Snapshot: func(id string) { snapshot = id }})
	})
	t.Run("databricks", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs against a local warehouse")
		}
		if snapshot == "" {
			t.Fatal("the duckdb run derived no snapshot to compare with")
		}
		storetest.RunAllocation(t, func(t *testing.T) storetest.AllocationEnv {
			ctx := dbsqltest.Context(t)
			src := report.FixtureStore(t)
			dir := t.TempDir()
			export := func(name, query string) string {
				f := filepath.Join(dir, name+".parquet")
				if _, err := src.DB().ExecContext(context.Background(), "COPY ("+query+") TO '"+f+"' (FORMAT parquet)"); err != nil {
					t.Fatal(err)
				}
				return f
			}
			wh := dbsqltest.Start(t, warehouse.Config{})
			db := dbsqltest.Open(t, wh.Config)
			store, err := databricks.New(db, wh.Config.Catalog, wh.Config.Schema, databricks.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Init(ctx); err != nil {
				t.Fatal(err)
			}
			load := func() {
				for table, file := range map[string]string{
					wh.Config.Catalog + "." + wh.Config.Schema + ".attribution": export("attribution", "SELECT * FROM attribution"),
					"system.billing.list_prices":                                export("prices", "SELECT * FROM billing_list_prices"),
					"system.billing.usage":                                      export("usage", "SELECT * FROM billing_usage"),
				} {
					if err := wh.Server.LoadTable(ctx, table, file); err != nil {
						t.Fatal(err)
					}
				}
			}
			load()
			tables := report.DatabricksTables(wh.Config.Catalog, wh.Config.Schema)
			tables.Calibration = ""
			return storetest.AllocationEnv{
				Source: report.Source{DB: db, Dialect: report.Databricks, Tables: tables},
				Table:  report.AllocationTable{DB: db, Dialect: report.Databricks, Table: wh.Config.Catalog + "." + wh.Config.Schema + ".cost_allocation"},
				// The warehouse's system tables are loaded from files: the
				// restated bill is loaded over the old one.
				Restate: func(t *testing.T) {
					if _, err := src.DB().Exec(restateSQL); err != nil {
						t.Fatal(err)
					}
					load()
				},
			}
		}, storetest.AllocationOptions{Period: p, WantSnapshot: snapshot})
	})
}
