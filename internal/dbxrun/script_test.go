package dbxrun_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/pushdown"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/databricks"
)

// TestScriptEqualsPushdownBatch runs the rendered job script three times
// over three windows (the run's time stepped forward, the late agent logs
// landing before the last), each run as a scheduled task runs it: every
// statement in order on one session, through the real driver. After every
// run its attribution, coverage and checkpoint must equal those of
// obolus batch --mode pushdown run at the same times into another schema.
func TestScriptEqualsPushdownBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pushdown and the job script over a generated workload")
	}
	e := newEnv(t, synth.Config{Seed: 7, AgentRequests: 1500, Users: 300, Duration: 6 * time.Hour, LateShare: 0.05}, nil)
	ctx := dbsqltest.Context(t)
	cfg := *e.cfg
	cfg.Batch.Lookback = time.Hour
	cfg.Match.Calibrate = false

	stores := map[string]*databricks.Store{}
	for _, name := range []string{"job_batch", "job_script"} {
		s, err := databricks.New(e.db, cfg.Databricks.Catalog, name, databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Init(ctx); err != nil {
			t.Fatal(err)
		}
		stores[name] = s
	}
	job, err := app.PushdownJob(&cfg, e.db, stores["job_batch"], nil)
	if err != nil {
		t.Fatal(err)
	}

	start := synth.DefaultStart
	nows := []time.Time{start.Add(2 * time.Hour), start.Add(4 * time.Hour), start.Add(7 * time.Hour)}
	for i, now := range nows {
		if i == len(nows)-1 {
			if err := e.layout.LoadLate(ctx, e.wh.Server.DB()); err != nil {
				t.Fatal(err)
			}
			// The last run looks back over everything, restating the
			// earlier windows with the late logs.
			cfg.Batch.Lookback, job.Lookback = 12*time.Hour, 12*time.Hour
		}
		rep, err := job.Run(ctx, batch.Options{Now: now})
		if err != nil {
			t.Fatalf("batch run %d: %v", i, err)
		}
		t.Logf("batch run %d: %s", i, rep.Summary())

		script, err := app.PushdownScript(ctx, &cfg, e.db, stores["job_script"], now)
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := pushdown.SplitStatements(script)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := e.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for j, st := range stmts {
			if _, err := conn.ExecContext(ctx, st); err != nil {
				t.Fatalf("script run %d, statement %d: %v\n%s", i, j+1, err, st)
			}
		}
		_ = conn.Close()

		for _, s := range []*databricks.Store{stores["job_batch"], stores["job_script"]} {
			if _, ok, err := s.Checkpoint(ctx, cfg.Batch.Job); err != nil || !ok {
				t.Fatalf("checkpoint of %s: %v %v", s.Schema(), ok, err)
			}
		}
		var got [2]struct {
			cp       time.Time
			coverage string
		}
		for k, name := range []string{"job_batch", "job_script"} {
			got[k].cp, _, _ = stores[name].Checkpoint(ctx, cfg.Batch.Job)
			got[k].coverage = coverageText(t, e, name)
		}
		if !got[0].cp.Equal(got[1].cp) || !got[1].cp.Equal(now) {
			t.Errorf("run %d: checkpoint batch %s, script %s; want %s", i, got[0].cp, got[1].cp, now)
		}
		if got[0].coverage != got[1].coverage {
			t.Errorf("run %d: coverage differs:\nbatch:\n%s\nscript:\n%s", i, got[0].coverage, got[1].coverage)
		}
		a, err := stores["job_batch"].Attributions(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := stores["job_script"].Attributions(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 {
			t.Fatalf("run %d: no rows", i)
		}
		sameRows(t, "script against batch, run "+string(rune('0'+i)), a, b)
		// Later runs version their rows higher, as batch runs do.
		var maxVersion int64
		for _, r := range b {
			maxVersion = max(maxVersion, r.Version)
		}
		if maxVersion != now.UnixMicro() {
			t.Errorf("run %d: script rows' highest version %d, want %d (the run's time)", i, maxVersion, now.UnixMicro())
		}
	}

	// A checkpoint at the run's time stops the script before it writes.
	script, err := app.PushdownScript(ctx, &cfg, e.db, stores["job_script"], nows[len(nows)-1])
	if err != nil {
		t.Fatal(err)
	}
	stmts, _ := pushdown.SplitStatements(script)
	conn, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var failed error
	for _, st := range stmts {
		if _, failed = conn.ExecContext(ctx, st); failed != nil {
			break
		}
	}
	if failed == nil || !strings.Contains(failed.Error(), "is not before now") {
		t.Errorf("script rerun at the checkpoint: %v, want the checkpoint error", failed)
	}

	// Calibration is computed in Go: render refuses it, naming the key.
	cal := cfg
	cal.Match.Calibrate = true
	_, err = app.PushdownScript(ctx, &cal, e.db, stores["job_script"], time.Time{})
	var ue app.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "match.calibrate") {
		t.Errorf("render with calibration: %v, want a usage error naming match.calibrate", err)
	}
}

// coverageText is the coverage table of schema, one line a row. cost_usd is
// a sum of doubles, which DuckDB's parallel aggregation adds in no fixed
// order (two batch runs differ in the last bits too), so it is compared to
// 1e-9 dollars; every other column exactly.
func coverageText(t *testing.T, e *env, schema string) string {
	t.Helper()
	var s string
	err := e.wh.Server.DB().QueryRowContext(dbsqltest.Context(t), `SELECT coalesce(string_agg(concat_ws('|', event_date, endpoint_name, match_method,
		invocations, rows, weighted_invocations, input_tokens, output_tokens, total_tokens, round(cost_usd, 9), share_of_invocations), chr(10)
		ORDER BY event_date, endpoint_name, match_method), '') FROM main_catalog.`+schema+`.coverage`).Scan(&s)
	if err != nil {
		t.Fatalf("coverage of %s: %v", schema, err)
	}
	return s
}

// TestLiteralsRoundTrip reads the literals a script holds back through the
// driver from the local warehouse: the values come back as they went in.
func TestLiteralsRoundTrip(t *testing.T) {
	wh := dbsqltest.Start(t, warehouse.Config{})
	db := dbsqltest.Open(t, wh.Config)
	ctx := dbsqltest.Context(t)
	for _, s := range []string{"", "plain", "o'brien", `back\slash`, `\'`, "${spark}", "tab\tnew\nline", "zoë", "''"} {
		lit, err := pushdown.Literal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.QueryRowContext(ctx, "SELECT "+lit).Scan(&got); err != nil || got != s {
			t.Errorf("SELECT %s = %q, %v; want %q", lit, got, err, s)
		}
	}
	for _, f := range []float64{0.1, 1.0 / 3, 2.5e-7, 1e300, -0.0, 12345.678} {
		lit, _ := pushdown.Literal(f)
		var got float64
		if err := db.QueryRowContext(ctx, "SELECT "+lit).Scan(&got); err != nil || got != f {
			t.Errorf("SELECT %s = %v, %v; want %v", lit, got, err, f)
		}
	}
	at := time.Date(2026, 11, 1, 2, 3, 4, 123456000, time.UTC)
	lit, _ := pushdown.Literal(at)
	var got time.Time
	if err := db.QueryRowContext(ctx, "SELECT "+lit).Scan(&got); err != nil || !got.Equal(at) {
		t.Errorf("SELECT %s = %v, %v; want %v", lit, got, err, at)
	}
}
