package report

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/duckdb"
)

// persistedFixture is the fixture store with its allocation persisted.
func persistedFixture(t *testing.T) (Source, *duckdb.Store) {
	t.Helper()
	ctx := context.Background()
	s := fixtureStore(t)
	src := NewDuckDBSource(s.DB())
	rep, err := Build(ctx, src, Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Billing {
		t.Fatal("the fixture has no bill")
	}
	if _, err := rep.Persist(ctx, AllocationTable{DB: s.DB(), Dialect: DuckDB, Table: "cost_allocation"}, time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	return src, s
}

func budgetFixtureOptions(t *testing.T, basis string) BudgetOptions {
	return BudgetOptions{Period: mustBudgetPeriod(t, "2026-11"), AsOf: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Basis: basis, Thresholds: testThresholds,
		DefaultUserMonth: 1, Limits: []BudgetLimit{{Scope: ScopeTeam, Name: "platform", Month: 20}, {Scope: ScopeCostCenter, Name: "CC-200", Month: 5}}, All: true}
}

// TestBuildBudgetsAllocated reads the persisted allocation: each end
// user's spend is their allocated_cost, not their list cost.
func TestBuildBudgetsAllocated(t *testing.T) {
	ctx := context.Background()
	src, _ := persistedFixture(t)
	rep, err := BuildBudgets(ctx, src, budgetFixtureOptions(t, BasisAllocated))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Basis != BasisAllocated || len(rep.Notes) != 0 {
		t.Fatalf("basis %s, notes %q", rep.Basis, rep.Notes)
	}
	list, err := BuildBudgets(ctx, src, budgetFixtureOptions(t, BasisList))
	if err != nil {
		t.Fatal(err)
	}
	listSpend := map[string]float64{}
	for _, l := range list.Lines {
		listSpend[l.Scope+"/"+l.Name] = l.Spend
	}
	differs := false
	for _, l := range rep.Lines {
		var want float64
		col := map[string]string{ScopeUser: "end_user", ScopeTeam: "team", ScopeCostCenter: "cost_center"}[l.Scope]
		if err := queryRow(ctx, src.DB, `SELECT CAST(coalesce(sum(allocated_cost), 0) AS DOUBLE) FROM cost_allocation
WHERE `+col+` = ? AND hour >= make_timestamp(?) AND hour < make_timestamp(?)`,
			l.Name, rep.Period.Start.UnixMicro(), rep.AsOf.UnixMicro()).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if math.Abs(l.Spend-want) > 1e-9 {
			t.Errorf("%s %s: spend %v, cost_allocation %v", l.Scope, l.Name, l.Spend, want)
		}
		if math.Abs(l.Spend-listSpend[l.Scope+"/"+l.Name]) > 1e-6 {
			differs = true
		}
	}
	if len(rep.Lines) < 4 || !differs {
		t.Errorf("%d lines; allocated differs from list: %v", len(rep.Lines), differs)
	}
}

// TestDatabricksBudgets runs the budgets report through the real driver
// against the local warehouse, on both bases: the same JSON as the
// embedded store's.
func TestDatabricksBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs against a local warehouse")
	}
	ctx := dbsqltest.Context(t)
	src, s := persistedFixture(t)
	dir := t.TempDir()
	wh := dbsqltest.Start(t, warehouse.Config{})
	for _, table := range []string{"attribution", "cost_allocation"} {
		p := filepath.Join(dir, table+".parquet")
		if _, err := s.DB().ExecContext(ctx, "COPY (SELECT * FROM "+table+") TO '"+p+"' (FORMAT parquet)"); err != nil {
			t.Fatal(err)
		}
		if err := wh.Server.LoadTable(ctx, "main.obolus."+table, p); err != nil {
			t.Fatal(err)
		}
	}
	tables := DatabricksTables("main", "obolus")
	dbx := Source{DB: dbsqltest.Open(t, wh.Config), Dialect: Databricks, Tables: tables}
	for _, basis := range []string{BasisList, BasisAllocated} {
		opt := budgetFixtureOptions(t, basis)
		if got, want := budgetJSONOf(t, dbx, opt), budgetJSONOf(t, src, opt); got != want {
			t.Errorf("%s basis through Databricks SQL:\n%s\n--- embedded store ---\n%s", basis, got, want)
		}
	}
}

func budgetJSONOf(t *testing.T, src Source, opt BudgetOptions) string {
	t.Helper()
	rep, err := BuildBudgets(context.Background(), src, opt)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
