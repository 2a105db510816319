package dbxrun

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	databricksingest "github.com/obolus/obolus/ingest/databricks"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/pushdown"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// Pushdown runs windows in pushdown mode: the warehouse matches, prices and
// MERGEs; obolus computes the windows, loads the price list and org
// directory, and keeps checkpoints and run records, as batch.Job does.
type Pushdown struct {
	Name string
	// QueryTags label the run's statements, with obolus_run_id added.
	QueryTags map[string]string
	DB        *sql.DB
	Store     *databrickssink.Store
	Usage     []*databricksingest.Source
	Agents    []*databricksingest.Source
	// Served is the served_entities table, if any (at most one is used).
	Served      []*databricksingest.Source
	Match       enrich.MatchConfig
	Prices      *enrich.PriceList
	Org         []enrich.OrgEntry // nil: everyone unassigned
	Limits      ingest.Limits     // zero fields: ingest.DefaultLimits
	Lookback    time.Duration
	AgentMargin time.Duration
	Log         *slog.Logger

	// Timings of the last run, by stage (summary, load, merge, coverage, count).
	Timings map[string]time.Duration
}

// Config resolves the source tables' columns and returns the generator's configuration.
func (j *Pushdown) Config(ctx context.Context) (pushdown.Config, error) {
	cfg := pushdown.Config{Target: j.Store.Schema(), Match: j.Match, Prices: j.Prices, Org: j.Org, Limits: j.Limits}
	var served []pushdown.Table
	for _, group := range []struct {
		srcs []*databricksingest.Source
		dst  *[]pushdown.Table
	}{{j.Usage, &cfg.Usage}, {j.Agents, &cfg.Agents}, {j.Served, &served}} {
		for _, s := range group.srcs {
			if _, _, err := s.Resolve(ctx); err != nil {
				return cfg, err
			}
			if s.TimeInMillis() {
				return cfg, fmt.Errorf("pushdown: table %s keeps its time as epoch milliseconds; pushdown needs a TIMESTAMP column (use mode pull)", s.Table().Name)
			}
			t := s.Table()
			*group.dst = append(*group.dst, pushdown.Table{Name: t.Name, Kind: t.Spec.Kind, Columns: s.Columns(),
				AgentEndpoint: t.Spec.AgentEndpoint, ServicePrincipal: t.Spec.ServicePrincipal})
		}
	}
	if len(served) > 0 {
		cfg.Served = &served[0]
	}
	return cfg, cfg.Validate()
}

// Run processes one window like batch.Job.Run, with the same windows,
// checkpoint, reconciliation and run record.
func (j *Pushdown) Run(ctx context.Context, opt batch.Options) (rep *batch.Report, err error) {
	log := j.Log
	if log == nil {
		log = slog.Default()
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep = &batch.Report{RunID: newRunID(now), Job: j.Name, StartedAt: now.UTC(), ByMethod: map[string]float64{}}
	j.Timings = map[string]time.Duration{}
	ctx = WithQueryTags(ctx, j.QueryTags, map[string]string{"obolus_job": j.Name, "obolus_mode": "pushdown", "obolus_run_id": rep.RunID})
	defer func() {
		if err != nil {
			rep.Err = err.Error()
			rep.Finished = time.Now().UTC()
			if rerr := j.Store.RecordRun(context.WithoutCancel(ctx), rep.Run()); rerr != nil {
				log.Warn("record failed run", "run_id", rep.RunID, "err", rerr)
			}
		}
	}()
	w, p, err := batch.ResolveWindow(ctx, j.Store, j.Name, opt, now, j.Lookback)
	if err != nil {
		return rep, err
	}
	rep.Window, rep.Processed = w, p
	aw := p
	if !aw.From.IsZero() {
		aw.From = aw.From.Add(-j.AgentMargin)
	}
	aw.To = aw.To.Add(j.Match.Skew + time.Minute)
	windows := pushdown.Windows{Usage: p, Agents: aw}
	log.Info("pushdown window", "run_id", rep.RunID, "job", j.Name, "window", batch.FormatWindow(w), "processed", batch.FormatWindow(p))

	cfg, err := j.Config(ctx)
	if err != nil {
		return rep, err
	}
	stage := func(name string, t0 time.Time) { j.Timings[name] += time.Since(t0) }

	t0 := time.Now()
	sum, err := pushdown.Summary(cfg, windows)
	if err != nil {
		return rep, err
	}
	var first sql.NullTime
	err = j.DB.QueryRowContext(ctx, sum.SQL, sum.Args...).Scan(&rep.UsageRows, &rep.DeadLettered, &rep.Invocations,
		&rep.InputTokensIn, &rep.TokensIn, &first, &rep.AgentRows, &rep.AgentRequests)
	if err != nil {
		return rep, fmt.Errorf("pushdown summary of window %s: %w", batch.FormatWindow(p), err)
	}
	rep.Duplicates = rep.UsageRows - rep.DeadLettered - rep.Invocations
	stage("summary", t0)

	windows.Replace = p
	if windows.Replace.From.IsZero() {
		// An open-ended first run replaces from its earliest event on.
		windows.Replace.From = windows.Replace.To.Add(-time.Microsecond)
		if first.Valid && first.Time.Before(windows.Replace.From) {
			windows.Replace.From = first.Time.UTC()
		}
	}

	t0 = time.Now()
	for _, st := range pushdown.Load(cfg.Target, cfg.Prices, cfg.Org) {
		if _, err := j.DB.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return rep, fmt.Errorf("pushdown: load price list and org directory: %w", err)
		}
	}
	stage("load", t0)

	t0 = time.Now()
	run := enrich.Run{ID: rep.RunID, Version: now.UnixMicro(), ProcessedAt: now}
	if cfg.Match.Calibrate && cfg.Match.TimeWindow {
		if err := j.calibrate(ctx, cfg, windows, rep); err != nil {
			return rep, err
		}
		cfg.Calibrated = len(rep.Calibration) > 0
		stage("calibrate", t0)
		t0 = time.Now()
	}
	st, err := pushdown.Build(cfg, windows, run)
	if err != nil {
		return rep, err
	}
	if _, err := j.DB.ExecContext(ctx, st.SQL, st.Args...); err != nil {
		return rep, fmt.Errorf("pushdown: attribute window %s: %w", batch.FormatWindow(p), err)
	}
	stage("merge", t0)

	t0 = time.Now()
	if err := j.Store.RefreshCoverage(ctx, windows.Replace.From, windows.Replace.To); err != nil {
		return rep, fmt.Errorf("refresh coverage for window %s: %w", batch.FormatWindow(p), err)
	}
	stage("coverage", t0)

	t0 = time.Now()
	if err := j.countOutput(ctx, rep, windows.Replace); err != nil {
		return rep, err
	}
	stage("count", t0)
	if !rep.Reconciled() {
		return rep, fmt.Errorf("run %s does not reconcile: %s", rep.RunID, rep.Summary())
	}
	if err := batch.AdvanceCheckpoint(ctx, j.Store, log, j.Name, w.To, now); err != nil {
		return rep, err
	}
	rep.Finished = time.Now().UTC()
	if err := j.Store.RecordRun(ctx, rep.Run()); err != nil {
		log.Warn("record run", "run_id", rep.RunID, "err", err)
	}
	return rep, nil
}

// calibrate counts what calibration needs in the warehouse, makes the run's
// calibration table and writes it, for the MERGE to read.
func (j *Pushdown) calibrate(ctx context.Context, cfg pushdown.Config, w pushdown.Windows, rep *batch.Report) error {
	st, err := pushdown.CalibrationStats(cfg, w)
	if err != nil {
		return err
	}
	rows, err := j.DB.QueryContext(ctx, st.SQL, st.Args...)
	if err != nil {
		return fmt.Errorf("pushdown: calibration counts: %w", err)
	}
	stats, err := pushdown.ScanCalibrationStats(rows)
	rows.Close()
	if err != nil {
		return fmt.Errorf("pushdown: calibration counts: %w", err)
	}
	rep.Calibration = enrich.Calibrate(rep.RunID, stats)
	if err := j.Store.WriteCalibration(ctx, rep.Calibration); err != nil {
		return fmt.Errorf("pushdown: %w", err)
	}
	return nil
}

// countOutput reads back what the run wrote: invocations attributed and not,
// rows, tokens and cost, and the weighted invocations per method.
func (j *Pushdown) countOutput(ctx context.Context, rep *batch.Report, w ingest.Window) error {
	rows, err := j.DB.QueryContext(ctx, `SELECT match_method,
  count(DISTINCT invocation_id) AS invocations, count(*) AS n, sum(weight) AS weighted,
  coalesce(sum(total_tokens), 0) AS tokens, coalesce(sum(cost_usd), 0e0) AS cost
FROM `+j.Store.Table("attribution")+`
WHERE run_id = :run_id AND event_date BETWEEN :date_from AND :date_to
GROUP BY match_method`,
		databricks.Parameter{Name: "run_id", Value: rep.RunID},
		databricks.Parameter{Name: "date_from", Type: databricks.SqlDate, Value: w.From.UTC().Format(time.DateOnly)},
		databricks.Parameter{Name: "date_to", Type: databricks.SqlDate, Value: w.To.Add(-time.Microsecond).UTC().Format(time.DateOnly)})
	if err != nil {
		return fmt.Errorf("pushdown: count written rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			method        string
			inv, n, toks  int64
			weighted, usd float64
		)
		if err := rows.Scan(&method, &inv, &n, &weighted, &toks, &usd); err != nil {
			return fmt.Errorf("pushdown: count written rows: %w", err)
		}
		if method == schemas.MethodUnattributed {
			rep.Unattributed += inv
		} else {
			rep.Attributed += inv
		}
		rep.OutputRows += n
		rep.AddTokens(&rep.TokensOut, toks)
		rep.CostUSD += usd
		rep.ByMethod[method] += weighted
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pushdown: count written rows: %w", err)
	}
	return nil
}

func newRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Script renders the job as one SQL script that runs a window on the
// warehouse by itself (pushdown.Script); now is the SQL expression for the
// run's time, empty for current_timestamp(). It resolves the source tables'
// columns, so it needs the warehouse.
func (j *Pushdown) Script(ctx context.Context, now string) (string, error) {
	cfg, err := j.Config(ctx)
	if err != nil {
		return "", err
	}
	return pushdown.Script(cfg, pushdown.ScriptOptions{Job: j.Name, Lookback: j.Lookback, AgentMargin: j.AgentMargin, Now: now})
}
