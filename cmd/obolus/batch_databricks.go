package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/internal/dbxrun"
	"github.com/obolus/obolus/internal/progress"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
	"github.com/obolus/obolus/sink/report"
)

// Targets of obolus batch and obolus init.
const (
	targetDuckDB     = "duckdb"
	targetDatabricks = "databricks"
)

// batchTarget holds the flags that send obolus batch to Databricks.
type batchTarget struct {
	target, mode string
}

func (t *batchTarget) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.target, "target", targetDuckDB, "where the run reads and writes: duckdb (sources and the embedded store) or databricks (the databricks section)")
	cmd.Flags().StringVar(&t.mode, "mode", "", "with --target databricks: pull or pushdown (default: databricks.mode)")
}

// databricks reports whether the run goes to Databricks; a bad flag is a usage error.
func (t *batchTarget) databricks() (bool, error) {
	switch t.target {
	case targetDuckDB:
		if t.mode != "" {
			return false, usageErrorf("--mode: only with --target databricks")
		}
		return false, nil
	case targetDatabricks:
		switch t.mode {
		case "", config.ModePull, config.ModePushdown:
			return true, nil
		}
		return false, usageErrorf("--mode %q: use pull or pushdown", t.mode)
	}
	return false, usageErrorf("--target %q: use duckdb or databricks", t.target)
}

// runBatchTarget runs obolus batch on Databricks when the flags say so;
// handled is false when the run belongs to the embedded store.
func (a *cli) runBatchTarget(ctx context.Context, opt batch.Options, t *batchTarget) (handled bool, err error) {
	dbx, err := t.databricks()
	if err != nil || !dbx {
		return err != nil, err
	}
	return true, a.runBatchDatabricks(ctx, opt, t)
}

// openDatabricks connects to the configured warehouse and returns the store
// of catalog.schema.
func (a *cli) openDatabricks() (*sql.DB, *databrickssink.Store, error) {
	d := a.cfg.Databricks
	if !d.Enabled() {
		return nil, nil, usageErrorf("databricks.host: empty; configure the databricks section (see docs/databricks.md), or run obolus warehouse serve for a local one")
	}
	db, err := dbsql.Open(d.ConnectOptions(os.LookupEnv))
	if err != nil {
		return nil, nil, usageError{Err: err}
	}
	store, err := app.DatabricksStore(db, d)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, store, nil
}

func (a *cli) runBatchDatabricks(ctx context.Context, opt batch.Options, t *batchTarget) error {
	db, store, err := a.openDatabricks()
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.CheckVersion(ctx); err != nil {
		if errors.Is(err, schemas.ErrStoreVersion) {
			return usageError{Err: err}
		}
		return err
	}
	mode := t.mode
	if mode == "" {
		mode = a.cfg.Databricks.Mode
	}
	ctx = dbxrun.WithQueryTags(ctx, a.cfg.Databricks.QueryTags, map[string]string{"obolus_job": a.cfg.Batch.Job, "obolus_mode": mode})
	var rep *batch.Report
	switch mode {
	case config.ModePushdown:
		job, err := app.PushdownJob(a.cfg, db, store, a.log)
		if err != nil {
			return err
		}
		rep, err = job.Run(ctx, opt)
		if err == nil {
			a.log.Debug("pushdown stages", "timings", fmt.Sprint(job.Timings))
		}
		if err := a.reportBatch(rep, err, targetDatabricks, mode); err != nil {
			return err
		}
	default:
		job, err := app.PullJob(a.cfg, db, store, a.log)
		if err != nil {
			return err
		}
		job.Progress = progress.New(os.Stderr).Update
		rep, err = job.Run(ctx, opt)
		if err := a.reportBatch(rep, err, targetDatabricks, mode); err != nil {
			return err
		}
	}
	if !a.cfg.Batch.PersistAllocation {
		return nil
	}
	// The month's bill is read from system.billing.* beside the store.
	d := a.cfg.Databricks
	src := report.Source{DB: db, Dialect: report.Databricks, Tables: report.DatabricksTables(d.Catalog, d.Schema)}
	alloc := report.AllocationTable{DB: db, Dialect: report.Databricks, Table: d.Catalog + "." + d.Schema + ".cost_allocation"}
	return a.persistBatchAllocation(ctx, rep.Processed, src, alloc)
}

// reportBatch logs and prints a run's outcome. The reconciliation line is
// printed for a run that reconciled or could not; a run that failed before
// it had counted anything prints nothing that reads as a result.
func (a *cli) reportBatch(rep *batch.Report, err error, target, mode string) error {
	if rep != nil {
		a.log.Info("batch run", "target", target, "mode", mode, "run_id", rep.RunID, "window", batch.FormatWindow(rep.Window),
			"invocations", rep.Invocations, "attributed", rep.Attributed, "unattributed", rep.Unattributed,
			"agent_requests", rep.AgentRequests, "dead_lettered", rep.DeadLettered+rep.AgentDeadLettered, "cost_usd", fmt.Sprintf("%.2f", rep.CostUSD))
		switch {
		case err == nil, rep.Invocations > 0 && !rep.Reconciled():
			fmt.Fprintln(a.out, rep.Summary())
		default:
			fmt.Fprintf(a.out, "FAILED: run %s did not finish and did not move the checkpoint; rerunning the window is safe\n", rep.RunID)
		}
	}
	if err != nil {
		if rep != nil && rep.Invocations > 0 && !rep.Reconciled() {
			return fmt.Errorf("%w: %v", errUnreconciled, err)
		}
		return err
	}
	return nil
}
