package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/dbsql/workload"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
)

// localSetup generates a small workload, serves it from a local warehouse
// and writes the configuration obolus warehouse serve would write.
func localSetup(t *testing.T) (cfgPath string, wh *dbsqltest.Warehouse) {
	t.Helper()
	dir := t.TempDir()
	ctx := dbsqltest.Context(t)
	if _, err := synth.Generate(ctx, synth.Config{Seed: 3, AgentRequests: 800, Users: 60, Duration: 3 * time.Hour}, dir); err != nil {
		t.Fatal(err)
	}
	wh = dbsqltest.Start(t, warehouse.Config{})
	layout, err := workload.Load(ctx, wh.Server.DB(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.LoadLate(ctx, wh.Server.DB()); err != nil {
		t.Fatal(err)
	}
	d := wh.Config
	layout.Configure(&d)
	cfgPath = filepath.Join(dir, "databricks.yaml")
	if err := writeLocalConfig(cfgPath, d, layout); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(config.New(), cfgPath); err != nil {
		t.Fatalf("written configuration does not load: %v", err)
	}
	return cfgPath, wh
}

func TestDatabricksCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Databricks path against a local warehouse")
	}
	cfg, _ := localSetup(t)
	quiet := []string{"--config", cfg, "--log-level", "warn"}

	// init is idempotent: twice, the same objects.
	first := mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)
	second := mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)
	if first != second || !strings.Contains(first, "attribution") || !strings.Contains(first, "v_daily_user") {
		t.Errorf("init twice:\n%s\n%s", first, second)
	}

	doc := mustObolus(t, append([]string{"doctor"}, quiet...)...)
	for _, want := range []string{"ok  connect", "read system.ai_gateway.usage", "objects in main.obolus", "request tags", "tag agent_request_id"} {
		if !strings.Contains(doc, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, doc)
		}
	}

	// Both modes reconcile; their tables then agree (checked in detail in
	// internal/dbxrun); a rerun changes nothing.
	for _, mode := range []string{"pull", "pushdown"} {
		out := mustObolus(t, append([]string{"batch", "--target", "databricks", "--mode", mode, "--from", "2026-10-31", "--to", "2026-11-02"}, quiet...)...)
		if !strings.HasPrefix(out, "reconciled:") {
			t.Fatalf("%s batch did not reconcile:\n%s", mode, out)
		}
	}
	// The read commands read the Delta tables with --target databricks.
	sum := mustObolus(t, append([]string{"summary", "--target", "databricks"}, quiet...)...)
	if !strings.Contains(sum, "Top end users by cost") || !strings.Contains(sum, "time_window") {
		t.Errorf("summary --target databricks:\n%s", sum)
	}
	sc := mustObolus(t, append([]string{"score", "--target", "databricks", "--truth", filepath.Join(filepath.Dir(cfg), "ground_truth.jsonl"), "--min-precision", "0.9"}, quiet...)...)
	if !strings.Contains(sc, "precision") {
		t.Errorf("score --target databricks:\n%s", sc)
	}
	rep := mustObolus(t, append([]string{"report", "chargeback", "--target", "databricks", "--period", "2026-11", "--format", "csv"}, quiet...)...)
	if !strings.Contains(rep, "team") {
		t.Errorf("report chargeback --target databricks:\n%s", rep)
	}
	out, err := obolus(t, append([]string{"batch", "--target", "databricks", "--mode", "sideways"}, quiet...)...)
	if err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("bad --mode: %v\n%s", err, out)
	}
}

func TestDoctorReportsMissingObjectsAndColumns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs against a local warehouse")
	}
	cfg, wh := localSetup(t)
	// Before init, and with a payload table that lacks a required column.
	if _, err := wh.Server.DB().Exec(`ALTER TABLE lakehouse.agents.support_bot_payload RENAME COLUMN databricks_request_id TO req_id`); err != nil {
		t.Fatal(err)
	}
	out, err := obolus(t, "doctor", "--config", cfg, "--log-level", "warn")
	if err == nil {
		t.Fatalf("doctor passed without obolus objects:\n%s", out)
	}
	for _, want := range []string{"obolus init --target databricks", `has no column "databricks_request_id"`} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}
