package dbxrun_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/dbxrun"
	"github.com/obolus/obolus/internal/pushdown"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/databricks"
)

// TestScriptEqualsPushdownBatch runs the rendered job script three times
// over three windows (the run's time stepped forward, the late agent logs
// landing before the last, whose lookback restates everything), each run as
// a scheduled task runs it: every statement in order on one session,
// through the real driver. After every run its attribution, coverage,
// calibration and checkpoint must equal those of obolus batch --mode
// pushdown run at the same times into another schema, for policies with and
// without calibration and a minimum confidence.
func TestScriptEqualsPushdownBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pushdown and the job script over a generated workload")
	}
	e := newEnv(t, synth.Config{Seed: 7, AgentRequests: 1500, Users: 300, Duration: 6 * time.Hour, LateShare: 0.05}, nil)
	ctx := dbsqltest.Context(t)
	policies := []struct {
		name string
		edit func(*config.Config)
	}{
		{"calibrated", func(c *config.Config) {}},
		{"nearest_gated", func(c *config.Config) { c.Match.Ambiguity, c.Match.MinConfidence = enrich.PolicyNearest, 0.9 }},
		{"uncalibrated_split", func(c *config.Config) { c.Match.Calibrate, c.Match.Ambiguity = false, enrich.PolicySplit }},
	}
	type pair struct {
		name          string
		cfg           *config.Config
		job           *dbxrun.Pushdown
		batch, script *databricks.Store
	}
	var pairs []pair
	for _, p := range policies {
		cfg := *e.cfg
		cfg.Batch.Lookback = time.Hour
		p.edit(&cfg)
		pr := pair{name: p.name, cfg: &cfg}
		for _, s := range []struct {
			dst  **databricks.Store
			name string
		}{{&pr.batch, "batch_" + p.name}, {&pr.script, "script_" + p.name}} {
			store, err := databricks.New(e.db, cfg.Databricks.Catalog, s.name, databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Init(ctx); err != nil {
				t.Fatal(err)
			}
			*s.dst = store
		}
		job, err := app.PushdownJob(&cfg, e.db, pr.batch, nil)
		if err != nil {
			t.Fatal(err)
		}
		pr.job = job
		pairs = append(pairs, pr)
	}

	start := synth.DefaultStart
	nows := []time.Time{start.Add(2 * time.Hour), start.Add(4 * time.Hour), start.Add(7 * time.Hour)}
	for i, now := range nows {
		if i == len(nows)-1 {
			if err := e.layout.LoadLate(ctx, e.wh.Server.DB()); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range pairs {
			if i == len(nows)-1 {
				p.cfg.Batch.Lookback, p.job.Lookback = 12*time.Hour, 12*time.Hour
			}
			rep, err := p.job.Run(ctx, batch.Options{Now: now})
			if err != nil {
				t.Fatalf("%s: batch run %d: %v", p.name, i, err)
			}
			t.Logf("%s: batch run %d: %s", p.name, i, rep.Summary())
			runScript(t, e, p.cfg, p.script, now)

			what := fmt.Sprintf("%s run %d", p.name, i)
			var cps [2]time.Time
			for k, s := range []*databricks.Store{p.batch, p.script} {
				cp, ok, err := s.Checkpoint(ctx, p.cfg.Batch.Job)
				if err != nil || !ok {
					t.Fatalf("%s: checkpoint of %s: %v %v", what, s.Schema(), ok, err)
				}
				cps[k] = cp
			}
			if !cps[0].Equal(cps[1]) || !cps[1].Equal(now) {
				t.Errorf("%s: checkpoint batch %s, script %s; want %s", what, cps[0], cps[1], now)
			}
			for _, table := range []func(*testing.T, *env, string) string{coverageText, calibrationText, runsText} {
				a, b := table(t, e, p.batch.Schema().Schema), table(t, e, p.script.Schema().Schema)
				if a != b {
					t.Errorf("%s: tables differ:\nbatch:\n%s\nscript:\n%s", what, a, b)
				}
			}
			a, err := p.batch.Attributions(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.script.Attributions(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(a) == 0 {
				t.Fatalf("%s: no rows", what)
			}
			sameRows(t, what, a, b)
			// Later runs version their rows higher, as batch runs do.
			var maxVersion int64
			for _, r := range b {
				maxVersion = max(maxVersion, r.Version)
			}
			if maxVersion != now.UnixMicro() {
				t.Errorf("%s: script rows' highest version %d, want %d (the run's time)", what, maxVersion, now.UnixMicro())
			}
		}
	}
	if runs := runsText(t, e, pairs[0].script.Schema().Schema); strings.Count(runs, "|ok|") != len(nows) {
		t.Errorf("script runs recorded:\n%s\nwant %d runs, ok", runs, len(nows))
	}
	// Calibration did change confidences: some time-window row's confidence
	// is not the rule's.
	rows, _ := pairs[0].script.Attributions(ctx, time.Time{}, time.Time{})
	calibrated := 0
	for _, r := range rows {
		if r.MatchMethod == schemas.MethodTimeWindow && r.MatchConfidence != 0.95 && r.MatchConfidence != 0.95*0.75 &&
			r.MatchConfidence != 0.95/2 && r.MatchConfidence != 0.95/2*0.75 && r.MatchConfidence != 0.95/3 {
			calibrated++
		}
	}
	if calibrated == 0 {
		t.Error("calibrated: no time-window row carries a calibrated confidence")
	}

	// A checkpoint at the run's time stops the script before it writes.
	p := pairs[0]
	script, err := app.PushdownScript(ctx, p.cfg, e.db, p.script, nows[len(nows)-1])
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

	// A run that wrote less than it read fails at its reconciliation, and
	// the checkpoint stays: one of its rows is deleted just before.
	later := nows[len(nows)-1].Add(time.Hour)
	if script, err = app.PushdownScript(ctx, p.cfg, e.db, p.script, later); err != nil {
		t.Fatal(err)
	}
	stmts, _ = pushdown.SplitStatements(script)
	record := "-- " + strings.SplitN(pushdown.RecordComment, "\n", 2)[0]
	failed = nil
	for _, st := range stmts {
		if strings.HasPrefix(st, record) {
			attribution := p.script.Table("attribution")
			if _, err := conn.ExecContext(ctx, "DELETE FROM "+attribution+" WHERE run_id = system.session.obolus_run_id AND invocation_id = "+
				"(SELECT min(invocation_id) FROM "+attribution+" WHERE run_id = system.session.obolus_run_id)"); err != nil {
				t.Fatal(err)
			}
		}
		if _, failed = conn.ExecContext(ctx, st); failed != nil {
			break
		}
	}
	if failed == nil || !strings.Contains(failed.Error(), "does not reconcile") {
		t.Errorf("script run missing a row: %v, want the reconciliation error", failed)
	}
	if cp, _, err := p.script.Checkpoint(ctx, p.cfg.Batch.Job); err != nil || !cp.Equal(nows[len(nows)-1]) {
		t.Errorf("checkpoint after a run that did not reconcile: %s, %v; want it left at %s", cp, err, nows[len(nows)-1])
	}
	var status, msg string
	if err := conn.QueryRowContext(ctx, "SELECT status, error FROM "+p.script.Table("runs")+" WHERE run_id = system.session.obolus_run_id").Scan(&status, &msg); err != nil ||
		status != schemas.RunFailed || !strings.Contains(msg, "does not reconcile: NOT RECONCILED: usage rows") {
		t.Errorf("run record of the run that did not reconcile: %q %q %v", status, msg, err)
	}
}

// runScript renders the job script of cfg into store at now and runs it as
// a SQL task does: its statements in order, on one session.
func runScript(t *testing.T, e *env, cfg *config.Config, store *databricks.Store, now time.Time) {
	t.Helper()
	ctx := dbsqltest.Context(t)
	script, err := app.PushdownScript(ctx, cfg, e.db, store, now)
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
	defer conn.Close()
	for j, st := range stmts {
		if _, err := conn.ExecContext(ctx, st); err != nil {
			t.Fatalf("script at %s, statement %d: %v\n%s", now, j+1, err, st)
		}
	}
}

// runsText is the runs table of schema, one line a run, without what names
// a run or when it ran.
func runsText(t *testing.T, e *env, schema string) string {
	t.Helper()
	var s string
	err := e.wh.Server.DB().QueryRowContext(dbsqltest.Context(t), `SELECT coalesce(string_agg(concat_ws('|', job, coalesce(CAST(window_from AS VARCHAR), 'open'), window_to,
		rows_read, outside_window, duplicates, dead_lettered, attributed, unattributed, input_tokens_in, total_tokens_in, total_tokens_out,
		status, error, stale, stale_invocations), chr(10) ORDER BY window_to), '') FROM main_catalog.`+schema+`.runs`).Scan(&s)
	if err != nil {
		t.Fatalf("runs of %s: %v", schema, err)
	}
	return s
}

// calibrationText is the calibration table of schema, one line a row,
// without the run ids (each side names its runs its own way); the doubles
// are printed exactly, so equal text is bit-identical confidences.
func calibrationText(t *testing.T, e *env, schema string) string {
	t.Helper()
	var s string
	err := e.wh.Server.DB().QueryRowContext(dbsqltest.Context(t), `SELECT coalesce(string_agg(line, chr(10) ORDER BY line), '') FROM (
		SELECT concat_ws('|', service_principal, method, candidates, rule_confidence, calls, correct, present, confidence) AS line
		FROM main_catalog.`+schema+`.calibration)`).Scan(&s)
	if err != nil {
		t.Fatalf("calibration of %s: %v", schema, err)
	}
	return s
}

// coverageText is the coverage table of schema, one line a row. cost_usd
// and share_of_invocations are sums of doubles (costs; split weights),
// which DuckDB's parallel aggregation adds in no fixed order (two batch runs
// differ in the last bits too), so they are compared to 1e-9 and 1e-12;
// every other column exactly.
func coverageText(t *testing.T, e *env, schema string) string {
	t.Helper()
	var s string
	err := e.wh.Server.DB().QueryRowContext(dbsqltest.Context(t), `SELECT coalesce(string_agg(concat_ws('|', event_date, endpoint_name, match_method,
		invocations, rows, weighted_invocations, input_tokens, output_tokens, total_tokens, round(cost_usd, 9), round(share_of_invocations, 12)), chr(10)
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
	for _, f := range []float64{0.1, 1.0 / 3, 2.5e-7, 1e300, -1.5, 12345.678} {
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

// TestCalibrationSQLEqualsGo computes calibration tables from hand-made
// counts in the warehouse (what a job script runs) and in Go
// (enrich.Calibrate), and requires identical rows, every double bit for
// bit: buckets at and off the skew edge, nearest buckets, a service
// principal without a presence row and one with presence only, codes
// calibration ignores, and two buckets whose rule confidences may meet
// (0.95/3×0.75 and 0.95/4), which both must group alike.
func TestCalibrationSQLEqualsGo(t *testing.T) {
	wh := dbsqltest.Start(t, warehouse.Config{})
	db := dbsqltest.Open(t, wh.Config)
	ctx := dbsqltest.Context(t)
	store, err := databricks.New(db, "main", "cal", databricks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	stats := schemas.CalibrationStats{
		Masked: []schemas.MaskedStat{
			{ServicePrincipal: "sp-1", Code: 1010, Calls: 10, Correct: 9},
			{ServicePrincipal: "sp-1", Code: 1110, Calls: 4, Correct: 2},
			{ServicePrincipal: "sp-1", Code: 3110, Calls: 5, Correct: 3},
			{ServicePrincipal: "sp-1", Code: 4010, Calls: 7, Correct: 7},
			{ServicePrincipal: "sp-1", Code: 2020, Calls: 6, Correct: 3},
			{ServicePrincipal: "sp-2", Code: 1010, Calls: 3, Correct: 1},
			{ServicePrincipal: "sp-2", Code: 3020, Calls: 2, Correct: 2},
			{ServicePrincipal: "sp-2", Code: 7110, Calls: 1000, Correct: 1},
			{ServicePrincipal: "o'sp", Code: 1010, Calls: 1, Correct: 1},
			{ServicePrincipal: "sp-1", Code: 10, Calls: 5, Correct: 5}, // no candidates: ignored
		},
		Presence: []schemas.PresenceStat{
			{ServicePrincipal: "sp-1", Linked: 30, NotFound: 2},
			{ServicePrincipal: "sp-2", Linked: 5},
			{ServicePrincipal: "sp-4", Linked: 3, NotFound: 1},
		},
	}
	var rows []string
	for _, m := range stats.Masked {
		sp, _ := pushdown.Literal(m.ServicePrincipal)
		rows = append(rows, fmt.Sprintf("('m', %s, CAST(%d AS BIGINT), CAST(%d AS BIGINT), CAST(%d AS BIGINT))", sp, m.Code, m.Calls, m.Correct))
	}
	for _, p := range stats.Presence {
		sp, _ := pushdown.Literal(p.ServicePrincipal)
		rows = append(rows, fmt.Sprintf("('p', %s, CAST(0 AS BIGINT), CAST(%d AS BIGINT), CAST(%d AS BIGINT))", sp, p.Linked, p.NotFound))
	}
	src := pushdown.Statement{SQL: "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") AS v(kind, requester, code, calls, correct)"}
	for _, st := range pushdown.CalibrationFromStats(store.Table("calibration"), src, "run-1") {
		q, err := st.Inline(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	got, err := store.Calibration(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	want := enrich.Calibrate("run-1", stats)
	if len(got) != len(want) {
		t.Fatalf("%d rows from SQL, %d from Go:\n%+v\n%+v", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n SQL %+v\n Go  %+v", i, got[i], want[i])
		}
	}
}
