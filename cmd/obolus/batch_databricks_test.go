package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/dbsql/workload"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/report"
)

// localSetup generates a small workload, serves it from a local warehouse
// and writes the configuration obolus warehouse serve would write.
func localSetup(t *testing.T) (cfgPath string, wh *dbsqltest.Warehouse) {
	t.Helper()
	return localSetupWith(t, warehouse.Config{}, nil)
}

// localSetupWith is localSetup with a server configuration and a last say
// over the databricks section written.
func localSetupWith(t *testing.T, wc warehouse.Config, edit func(*config.Databricks)) (cfgPath string, wh *dbsqltest.Warehouse) {
	t.Helper()
	return localSetupGen(t, localWorkload, wc, edit)
}

// localWorkload is the workload localSetup generates.
var localWorkload = synth.Config{Seed: 3, AgentRequests: 800, Users: 60, Duration: 3 * time.Hour, TagKeyVariantShare: 0.2}

// localSetupGen is localSetupWith for the workload sc.
func localSetupGen(t *testing.T, sc synth.Config, wc warehouse.Config, edit func(*config.Databricks)) (cfgPath string, wh *dbsqltest.Warehouse) {
	t.Helper()
	dir := t.TempDir()
	ctx := dbsqltest.Context(t)
	if _, err := synth.Generate(ctx, sc, dir); err != nil {
		t.Fatal(err)
	}
	wh = dbsqltest.Start(t, wc)
	layout, err := workload.Load(ctx, wh.Server.DB(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := layout.LoadLate(ctx, wh.Server.DB()); err != nil {
		t.Fatal(err)
	}
	d := wh.Config
	layout.Configure(&d)
	if edit != nil {
		edit(&d)
	}
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
	faults := &warehouse.Faults{}
	cfg, wh := localSetupWith(t, warehouse.Config{Faults: faults}, nil)
	quiet := []string{"--config", cfg, "--log-level", "warn"}

	// init is idempotent: twice, the same objects.
	first := mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)
	second := mustObolus(t, append([]string{"init", "--target", "databricks"}, quiet...)...)
	if first != second || !strings.Contains(first, "attribution") || !strings.Contains(first, "v_daily_user") {
		t.Errorf("init twice:\n%s\n%s", first, second)
	}

	doc := mustObolus(t, append([]string{"doctor"}, quiet...)...)
	for _, want := range []string{"ok    connect", "read system.ai_gateway.usage", "objects in main.obolus", "request tags", "tag agent_request_id",
		`is read as "agent_request_id" (forgiving tag keys)`, "ok    agent logs", "ok    served entities"} {
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
	if !strings.Contains(sum, "Top end users by cost") || !strings.Contains(sum, "time_window") || !strings.Contains(sum, "Attributed cost by confidence") {
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
	checkDatabricksPersist(t, wh, faults, quiet)
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

// The whole Databricks path over the protocol a workspace speaks: TLS with a
// certificate from databricks.ca_file, OAuth M2M sign-in, and the usage
// windows read through CloudFetch links. The answers are those of the same
// run with every result inline, and the client secret appears nowhere in
// the output, debug logs included.
func TestDatabricksOverTLSWithOAuthAndCloudFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Databricks path against a local warehouse")
	}
	const id, secret = "sp-obolus-e2e", "e2e-oauth-secret-5f0c9a7d2b"
	wc := warehouse.Config{TLS: true, OAuthClients: map[string]string{id: secret},
		CloudFetchThreshold: 2000, CloudFetchFileRows: 1500}
	cfg, wh := localSetupWith(t, wc, func(d *config.Databricks) {
		d.Auth = config.DatabricksAuth{Type: config.AuthOAuthM2M, ClientID: id, ClientSecret: secret}
	})
	// Volume uploads go through the driver's own HTTP client, which trusts
	// the system's roots only, not databricks.ca_file (docs/databricks.md).
	t.Setenv("OBOLUS_DATABRICKS_STAGING", "inserts")
	args := []string{"--config", cfg, "--log-level", "debug"}
	window := []string{"--from", "2026-10-31", "--to", "2026-11-02"}
	var outputs strings.Builder
	run := func(a ...string) {
		out := mustObolus(t, append(a, args...)...)
		outputs.WriteString(out)
	}
	run("init", "--target", "databricks")
	digest := func() string { return wh.AttributionDigest(t, wh.Config.Schema) }
	run(append([]string{"batch", "--target", "databricks", "--mode", "pull"}, window...)...)
	viaLinks := digest()
	files := wh.Server.Calls(warehouse.CallDownload)
	if files == 0 {
		t.Fatal("the pull run downloaded no CloudFetch file")
	}
	if wh.Server.Calls(warehouse.CallToken) == 0 {
		t.Fatal("no OAuth token was issued")
	}
	t.Setenv("OBOLUS_DATABRICKS_CLOUD_FETCH", "false")
	run(append([]string{"batch", "--target", "databricks", "--mode", "pull"}, window...)...)
	if got := wh.Server.Calls(warehouse.CallDownload); got != files {
		t.Errorf("with cloud_fetch false the run downloaded %d more files", got-files)
	}
	if inline := digest(); inline != viaLinks {
		t.Errorf("answers read inline differ from those read through CloudFetch")
	}
	if strings.Contains(outputs.String(), secret) {
		t.Error("the client secret appears in obolus's output or logs")
	}
	if !strings.Contains(outputs.String(), "reconciled:") {
		t.Errorf("no reconciled run in the output:\n%s", outputs.String())
	}
}

// checkDatabricksPersist: report chargeback --target databricks --persist
// writes cost_allocation through the real driver, summing to the bill
// that a generated bill loaded into system.billing.* makes; a second
// persist of the same bill changes nothing; a restated bill whose replace
// statement fails leaves the period as it was, and no staging table behind.
func checkDatabricksPersist(t *testing.T, wh *dbsqltest.Warehouse, faults *warehouse.Faults, quiet []string) {
	t.Helper()
	ctx := dbsqltest.Context(t)
	db := dbsqltest.Open(t, wh.Config)
	p, err := report.ParsePeriod("2026-11")
	if err != nil {
		t.Fatal(err)
	}
	src := report.Source{DB: db, Dialect: report.Databricks, Tables: report.DatabricksTables(wh.Config.Catalog, wh.Config.Schema)}
	bill, err := report.GenerateBilling(ctx, src, report.BillingGenConfig{Seed: 1, Period: p})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	usage, prices := filepath.Join(dir, "usage.jsonl"), filepath.Join(dir, "prices.jsonl")
	if err := bill.WriteJSONL(usage, prices); err != nil {
		t.Fatal(err)
	}
	for table, file := range map[string]string{"system.billing.usage": usage, "system.billing.list_prices": prices} {
		if err := wh.Server.LoadTable(ctx, table, file); err != nil {
			t.Fatal(err)
		}
	}
	table := wh.Config.Catalog + "." + wh.Config.Schema + ".cost_allocation"
	state := func() (snapshots, rows int, total string) {
		if err := db.QueryRowContext(ctx, "SELECT count(DISTINCT snapshot_id), count(*), coalesce(CAST(sum(allocated_cost) AS STRING), 'none') FROM "+table).Scan(&snapshots, &rows, &total); err != nil {
			t.Fatal(err)
		}
		return
	}
	for i := range 2 {
		mustObolus(t, append([]string{"report", "chargeback", "--target", "databricks", "--period", "2026-11", "--persist", "--format", "csv"}, quiet...)...)
		rep, err := report.Build(ctx, src, report.Options{Period: p})
		if err != nil {
			t.Fatal(err)
		}
		snapshots, rows, total := state()
		if snapshots != 1 || rows == 0 || total != chargeback.FormatFixed(rep.Rec.BilledMicros, 6) || !rep.Billing {
			t.Errorf("persist %d: cost_allocation holds %d snapshots, %d rows, allocated %s; the bill is %s", i+1, snapshots, rows, total, chargeback.FormatFixed(rep.Rec.BilledMicros, 6))
		}
	}

	// A restated bill; its replace fails after every row was staged.
	if _, err := db.ExecContext(ctx, `UPDATE system.billing.usage SET usage_quantity = usage_quantity * 2
		WHERE record_id = (SELECT min(record_id) FROM system.billing.usage)`); err != nil {
		t.Fatal(err)
	}
	s0, r0, t0 := state()
	// The first multi-row INSERT of the rows fails, then (another run) the
	// statement that replaces the period.
	for _, failing := range []string{"VALUES (", "REPLACE WHERE"} {
		faults.FailStatement(failing, 1)
		if out, err := obolus(t, append([]string{"report", "chargeback", "--target", "databricks", "--period", "2026-11", "--persist", "--format", "csv"}, quiet...)...); err == nil {
			t.Fatalf("persist with a failing statement (%s) succeeded:\n%s", failing, out)
		}
		if s1, r1, t1 := state(); s1 != s0 || r1 != r0 || t1 != t0 {
			t.Errorf("a persist failing at %s changed cost_allocation: %d snapshots, %d rows, %s allocated; was %d, %d, %s", failing, s1, r1, t1, s0, r0, t0)
		}
	}
	var left int
	if err := wh.Server.DB().QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'cost_allocation_obolus_stage_%'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("staging tables left behind: %d (%v)", left, err)
	}
	mustObolus(t, append([]string{"report", "chargeback", "--target", "databricks", "--period", "2026-11", "--persist", "--format", "csv"}, quiet...)...)
	rep, err := report.Build(ctx, src, report.Options{Period: p})
	if err != nil {
		t.Fatal(err)
	}
	if snapshots, _, total := state(); snapshots != 1 || total != chargeback.FormatFixed(rep.Rec.BilledMicros, 6) || total == t0 {
		t.Errorf("restated persist: %d snapshots, allocated %s; the restated bill is %s (was %s)", snapshots, total, chargeback.FormatFixed(rep.Rec.BilledMicros, 6), t0)
	}
}
