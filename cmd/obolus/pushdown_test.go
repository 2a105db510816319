package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/pushdown"
)

// TestPushdownRender renders the job and views scripts where the bundle
// expects them and runs both on the local warehouse through the driver, as
// the bundle's SQL tasks would (the equality with batch --mode pushdown over
// several windows is tested in internal/dbxrun).
func TestPushdownRender(t *testing.T) {
	if testing.Short() {
		t.Skip("renders against a local warehouse")
	}
	cfg, wh := localSetup(t)
	quiet := []string{"--config", cfg, "--log-level", "warn"}
	mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)

	if out, err := obolus(t, append([]string{"pushdown", "render", "--now", "yesterday"}, quiet...)...); err == nil || !strings.Contains(err.Error(), "--now") {
		t.Errorf("render --now yesterday: %v\n%s", err, out)
	}
	dir := t.TempDir()
	job, views := filepath.Join(dir, "obolus_job.sql"), filepath.Join(dir, "obolus_views.sql")
	mustObolus(t, append([]string{"pushdown", "render", "--out", job, "--views-out", views}, quiet...)...)
	script, err := os.ReadFile(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DECLARE OR REPLACE VARIABLE obolus_now TIMESTAMP DEFAULT current_timestamp()", "MERGE INTO `main`.`obolus`.`attribution`",
		"FROM `main`.`obolus`.`checkpoints` WHERE job = 'default'", "INSERT INTO `main`.`obolus`.`calibration`"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Contains(string(script), "?") && strings.Contains(string(script), ":usage_from") {
		t.Error("script holds parameter markers")
	}

	db := dbsqltest.Open(t, wh.Config)
	ctx := dbsqltest.Context(t)
	for _, f := range []string{views, job} {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := pushdown.SplitStatements(string(text))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range stmts {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				t.Fatalf("%s statement %d: %v\n%s", filepath.Base(f), i+1, err, st)
			}
		}
		_ = conn.Close()
	}
	var n, users int
	if err := db.QueryRowContext(ctx, "SELECT count(*), count(DISTINCT end_user) FROM main.obolus.attribution").Scan(&n, &users); err != nil || n == 0 || users < 2 {
		t.Errorf("attribution after the script: %d rows, %d users, %v", n, users, err)
	}
	var cp int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM main.obolus.checkpoints WHERE job = 'default' AND window_end IS NOT NULL").Scan(&cp); err != nil || cp != 1 {
		t.Errorf("checkpoint after the script: %d rows, %v", cp, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM main.obolus.v_daily_user").Scan(&n); err != nil || n == 0 {
		t.Errorf("v_daily_user after the views script: %d rows, %v", n, err)
	}
}
