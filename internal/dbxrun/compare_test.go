package dbxrun_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/score"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/databricks"
)

// comparable blanks what names the run rather than the answer.
func comparable(rows []schemas.Attribution) []schemas.Attribution {
	out := make([]schemas.Attribution, len(rows))
	for i, r := range rows {
		r.RunID, r.Version, r.ProcessedAt = "", 0, time.Time{}
		out[i] = r
	}
	return out
}

// sameRows fails the test where a and b differ, showing the first few rows.
func sameRows(t *testing.T, what string, a, b []schemas.Attribution) {
	t.Helper()
	a, b = comparable(a), comparable(b)
	if len(a) != len(b) {
		t.Errorf("%s: %d rows against %d", what, len(a), len(b))
	}
	shown := 0
	for i := 0; i < len(a) && i < len(b) && shown < 5; i++ {
		if a[i] != b[i] {
			t.Errorf("%s: row %d differs:\n %+v\n %+v", what, i, a[i], b[i])
			shown++
		}
	}
}

// runner is one mode writing to its own schema of the shared warehouse.
type runner struct {
	name  string
	store *databricks.Store
	run   func(batch.Options) (*batch.Report, error)
}

func runners(t *testing.T, e *env, cfg *config.Config, suffix string) []runner {
	t.Helper()
	ctx := dbsqltest.Context(t)
	var out []runner
	for _, mode := range []string{config.ModePull, config.ModePushdown} {
		store, err := databricks.New(e.db, cfg.Databricks.Catalog, mode+"_"+suffix, databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Init(ctx); err != nil {
			t.Fatal(err)
		}
		r := runner{name: mode, store: store}
		switch mode {
		case config.ModePull:
			job, err := app.PullJob(cfg, e.db, store, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.run = func(o batch.Options) (*batch.Report, error) { return job.Run(ctx, o) }
		default:
			job, err := app.PushdownJob(cfg, e.db, store, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.run = func(o batch.Options) (*batch.Report, error) { return job.Run(ctx, o) }
		}
		out = append(out, r)
	}
	return out
}

func scoreRows(t *testing.T, truthPath string, rows []schemas.Attribution) score.Report {
	t.Helper()
	truth, err := score.LoadTruth(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	srows := make([]score.Row, len(rows))
	for i, r := range rows {
		srows[i] = score.Row{InvocationID: r.InvocationID, EndUser: r.EndUser, MatchMethod: r.MatchMethod, Weight: r.Weight}
	}
	return score.Score(truth, srows)
}

// TestPullAndPushdownAgree runs both modes over the same generated workload,
// window by window, with the agent logs that arrive late landing before the
// last window (whose lookback restates everything), and requires identical
// rows after every window, the ground-truth bars at the end, and reruns that
// change nothing.
func TestPullAndPushdownAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("runs both modes over a generated workload")
	}
	e := newEnv(t, synth.Config{Seed: 7, AgentRequests: 2500, Users: 2000, Duration: 6 * time.Hour, LateShare: 0.05}, nil)
	start := synth.DefaultStart
	windows := []struct{ from, to time.Time }{
		{start, start.Add(2 * time.Hour)},
		{start.Add(2 * time.Hour), start.Add(4 * time.Hour)},
		{start.Add(4 * time.Hour), start.Add(7 * time.Hour)}, // after the late logs landed
	}
	policies := []struct {
		name string
		edit func(*config.Config)
	}{
		{"unattributed", func(c *config.Config) {}},
		{"split", func(c *config.Config) { c.Match.Ambiguity = enrich.PolicySplit }},
		{"split_limited", func(c *config.Config) { c.Match.Ambiguity, c.Match.MaxSplitUsers = enrich.PolicySplit, 2 }},
		{"nearest", func(c *config.Config) { c.Match.Ambiguity = enrich.PolicyNearest }},
		{"nearest_gated", func(c *config.Config) { c.Match.Ambiguity, c.Match.MinConfidence = enrich.PolicyNearest, 0.9 }},
		{"fallback_no_trace_rule", func(c *config.Config) {
			c.Match.UntrustedIDFallback = true
			c.Match.Rules.TraceID = false
			c.Match.Skew = 750 * time.Millisecond
		}},
	}
	type pair struct {
		name string
		cfg  *config.Config
		rs   []runner
	}
	var pairs []pair
	for _, p := range policies {
		cfg := *e.cfg
		cfg.Batch.Lookback = time.Hour
		p.edit(&cfg)
		pairs = append(pairs, pair{p.name, &cfg, runners(t, e, &cfg, p.name)})
	}
	ctx := dbsqltest.Context(t)
	for wi, w := range windows {
		if wi == len(windows)-1 {
			if err := e.layout.LoadLate(ctx, e.wh.Server.DB()); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range pairs {
			if wi == len(windows)-1 {
				p.cfg.Batch.Lookback = 12 * time.Hour
			}
			var got [][]schemas.Attribution
			for _, r := range p.rs {
				rep, err := r.run(batch.Options{From: w.from, To: w.to})
				if err != nil {
					t.Fatalf("%s %s window %d: %v", p.name, r.name, wi, err)
				}
				t.Logf("%s %s window %d: %s", p.name, r.name, wi, rep.Summary())
				rows, err := r.store.Attributions(ctx, time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rows)
			}
			sameRows(t, p.name+" window "+string(rune('0'+wi)), got[0], got[1])
		}
	}
	for _, p := range pairs {
		if p.name == "split_limited" {
			// Both kinds of answer are covered: splits within the limit and
			// events left ambiguous by it.
			rows, _ := p.rs[1].store.Attributions(ctx, time.Time{}, time.Time{})
			split, limited := 0, 0
			for _, r := range rows {
				switch {
				case r.MatchMethod == schemas.MethodTimeWindowSplit:
					split++
				case r.Reason == enrich.ReasonAmbiguous:
					limited++
				}
			}
			if split == 0 || limited == 0 {
				t.Errorf("split_limited: %d split rows, %d left ambiguous by the limit; want both", split, limited)
			}
		}
		if p.name == "nearest" {
			rows, _ := p.rs[1].store.Attributions(ctx, time.Time{}, time.Time{})
			n := 0
			for _, r := range rows {
				if r.MatchMethod == schemas.MethodTimeWindowNearest {
					n++
				}
			}
			if n == 0 {
				t.Errorf("nearest: no %s rows", schemas.MethodTimeWindowNearest)
			}
			// Calibration is exercised: both stores hold the last run's
			// table, and time-window rows carry its confidences, not the
			// rule's (identical rows in both modes are checked above).
			calibrated := 0
			for _, r := range rows {
				if r.MatchMethod == schemas.MethodTimeWindowNearest && r.MatchConfidence != 0.95/float64(r.Candidates) {
					calibrated++
				}
			}
			if calibrated == 0 {
				t.Errorf("nearest: every %s row has the rule's confidence 0.95/n: calibration did not apply", schemas.MethodTimeWindowNearest)
			}
			var tables [][]schemas.Calibration
			for _, r := range p.rs {
				cal, err := r.store.Calibration(ctx, "")
				if err != nil || len(cal) == 0 {
					t.Errorf("%s: calibration table: %d rows, err %v", r.name, len(cal), err)
				}
				// Runs differ in id only; the counts, the presence share
				// and the confidences must be the same in every mode.
				for i := range cal {
					cal[i].RunID = ""
				}
				slices.SortFunc(cal, func(a, b schemas.Calibration) int {
					return cmp.Or(cmp.Compare(a.ServicePrincipal, b.ServicePrincipal), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Candidates, b.Candidates),
						cmp.Compare(a.Calls, b.Calls), cmp.Compare(a.Correct, b.Correct), cmp.Compare(a.Present, b.Present), cmp.Compare(a.Confidence, b.Confidence))
				})
				tables = append(tables, cal)
			}
			for i := 1; i < len(tables); i++ {
				if !slices.Equal(tables[0], tables[i]) {
					t.Errorf("nearest: calibration of %s differs from %s:\n%v\n%v", p.rs[i].name, p.rs[0].name, tables[i], tables[0])
				}
			}
		}
		if p.name == "nearest_gated" {
			// The gate is exercised: some picks fell below 0.9 and were left
			// with their service principal, and none below it stands.
			rows, _ := p.rs[1].store.Attributions(ctx, time.Time{}, time.Time{})
			gated := 0
			for _, r := range rows {
				if r.Reason == enrich.ReasonLowConfidence {
					gated++
				}
				if (r.MatchMethod == schemas.MethodTimeWindow || r.MatchMethod == schemas.MethodTimeWindowNearest) && r.MatchConfidence < 0.9 {
					t.Errorf("nearest_gated: %s stands at confidence %v, below the minimum 0.9", r.InvocationID, r.MatchConfidence)
				}
			}
			if gated == 0 {
				t.Error("nearest_gated: no row was gated (reason low_confidence)")
			}
		}
		if p.name != "unattributed" && p.name != "split" {
			continue
		}
		for _, r := range p.rs {
			rows, _ := r.store.Attributions(ctx, time.Time{}, time.Time{})
			methods := map[string]int{}
			for _, r := range rows {
				methods[r.MatchMethod]++
			}
			if p.name == "split" && methods[schemas.MethodTimeWindowSplit] == 0 {
				t.Errorf("split: no %s rows: the comparison did not cover them (%v)", schemas.MethodTimeWindowSplit, methods)
			}
			rep := scoreRows(t, e.layout.Truth, rows)
			t.Logf("%s %s: precision %.4f recall %.4f", p.name, r.name, rep.Precision, rep.Recall)
			if rep.Precision < 0.99 || rep.Recall < 0.95 {
				t.Errorf("%s %s: precision %.4f recall %.4f, want ≥ 0.99 and ≥ 0.95", p.name, r.name, rep.Precision, rep.Recall)
			}
			for _, m := range rep.Methods {
				if schemas.IDMethod(m.Method) && m.Invocations > 0 && m.Precision != 1 {
					t.Errorf("%s %s: %s precision %.6f, want 1", p.name, r.name, m.Method, m.Precision)
				}
			}
			// A rerun of the last window changes nothing.
			last := windows[len(windows)-1]
			if _, err := r.run(batch.Options{From: last.from, To: last.to}); err != nil {
				t.Fatal(err)
			}
			again, _ := r.store.Attributions(ctx, time.Time{}, time.Time{})
			sameRows(t, p.name+" "+r.name+" rerun", rows, again)
		}
	}
}

// Hostile values in the data are only values: both modes attribute them
// alike, store them verbatim, and every table survives.
func TestHostileValuesAreHarmless(t *testing.T) {
	e := newEnv(t, smallWorkload(5), nil)
	ctx := dbsqltest.Context(t)
	hostile := []string{
		`x'); DROP TABLE main_catalog.obolus.attribution; --`,
		`a\'b`, `"quoted"`, "semi;colon", `` + "`back`tick`" + ``, "tab\there", "ünï",
	}
	for i, v := range hostile {
		_, err := e.wh.Server.DB().ExecContext(ctx, `INSERT INTO system_catalog.ai_gateway.usage BY NAME
			SELECT ? AS invocation_id, ? AS request_id, TIMESTAMP '2026-11-01 01:00:00' + INTERVAL (?) SECOND AS event_time,
			       'sp-hostile' AS requester, MAP {'end_user': ?, 'trace_id': ?, 'agent_request_id': ?} AS request_tags,
			       ? AS destination_model, 10 AS input_tokens, 5 AS output_tokens, 15 AS total_tokens, 1 AS schema_version`,
			"hostile-"+v, v, i, v, v, v, v)
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := *e.cfg
	rs := runners(t, e, &cfg, "hostile")
	var got [][]schemas.Attribution
	for _, r := range rs {
		if _, err := r.run(batch.Options{From: synth.DefaultStart, To: synth.DefaultStart.Add(6 * time.Hour)}); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		rows, err := r.store.Attributions(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		got = append(got, rows)
		users := map[string]bool{}
		for _, row := range rows {
			users[row.EndUser] = true
		}
		for _, v := range hostile {
			if !users[v] {
				t.Errorf("%s: no row attributed to %q", r.name, v)
			}
		}
	}
	sameRows(t, "hostile", got[0], got[1])
}
