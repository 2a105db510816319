package databricks_test

import (
	"slices"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/databricks"
)

// Init creates the analyst views with the tables, so a workspace needs no
// separate script; a view over tables the principal cannot read is skipped and
// named, not an error.
func TestInitCreatesAnalystViews(t *testing.T) {
	ctx := dbsqltest.Context(t)
	wh := dbsqltest.Start(t, warehouse.Config{})
	db := dbsqltest.Open(t, wh.Config)
	s, err := databricks.New(db, wh.Config.Catalog, wh.Config.Schema, databricks.Options{InsertParams: 100})
	if err != nil {
		t.Fatal(err)
	}
	names, err := s.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("init: %v", names)
	for _, view := range []string{"v_monthly_user", "v_monthly_team", "v_monthly_agent", "v_monthly_model", "v_coverage_monthly"} {
		if !slices.Contains(names, view) {
			t.Errorf("init did not create %s: %v", view, names)
		}
	}
	if !slices.Contains(names, "v_billing_hourly") && !slices.Contains(names, "v_billing_hourly (skipped: cannot read system.billing.usage)") {
		t.Errorf("init neither created nor reported skipping v_billing_hourly: %v", names)
	}

	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.ReplaceAttributions(ctx, day, day.Add(24*time.Hour), []schemas.Attribution{row("a", "u1", day.Add(time.Hour), 1)}); err != nil {
		t.Fatal(err)
	}
	var user string
	var tokens int64
	q := "SELECT end_user, total_tokens FROM " + wh.Config.Catalog + "." + wh.Config.Schema + ".v_monthly_user"
	if err := db.QueryRowContext(ctx, q).Scan(&user, &tokens); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if user != "u1" || tokens != 15 {
		t.Errorf("v_monthly_user = (%s, %d), want (u1, 15)", user, tokens)
	}
}
