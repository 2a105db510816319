package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/progress"
	"github.com/obolus/obolus/sink/report"
)

func (a *cli) batchCmd() *cobra.Command {
	var from, to string
	target := &batchTarget{}
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Attribute one event-time window into the DuckDB store",
		Long: `Reads gateway usage and agent logs for an event-time window, attributes every
gateway invocation to an end user (or leaves it unattributed, with a reason),
and replaces the window's rows in the store. Without --from it continues from
the job's checkpoint; the first run of a job takes all data. The window is
widened by batch.lookback so late agent logs are picked up by later runs.

A successful run moves the checkpoint to the window's end, never backwards: a
run over an older window (a backfill with --from and --to) leaves a later
checkpoint where it is, so the next scheduled run does not redo the days in
between. A window never ends after now.`,
		Example: `  obolus batch --config obolus.yaml
  obolus batch --config obolus.yaml --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			var opt batch.Options
			var err error
			if opt.From, err = parseTime("--from", from); err != nil {
				return err
			}
			if opt.To, err = parseTime("--to", to); err != nil {
				return err
			}
			if err := app.LimitHeap(a.cfg); err != nil {
				return err
			}
			if handled, err := a.runBatchTarget(ctx, opt, target); handled {
				return err
			}
			return a.runBatch(ctx, opt)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "window start, RFC 3339 or YYYY-MM-DD (default: the job's checkpoint)")
	cmd.Flags().StringVar(&to, "to", "", "window end, exclusive, RFC 3339 or YYYY-MM-DD (default: now)")
	target.addFlags(cmd)
	return cmd
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Before(ingest.EarliestEventTime) {
			// A zero time here would read as "not given": --from would
			// silently continue from the checkpoint.
			return time.Time{}, usageErrorf("%s %s is before %s, the earliest time obolus accepts; leave %s out for no bound",
				flag, s, ingest.EarliestEventTime.Format(time.DateOnly), flag)
		}
		return t.UTC(), nil
	}
	return time.Time{}, usageErrorf("%s %q: use RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)", flag, s)
}

func (a *cli) runBatch(ctx context.Context, opt batch.Options) error {
	cfg := a.cfg
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	job, err := app.EmbeddedJob(cfg, store, a.log)
	if err != nil {
		return err
	}
	job.Progress = progress.New(os.Stderr).Update
	rep, err := job.Run(ctx, opt)
	if err := a.reportBatch(rep, err, targetDuckDB, ""); err != nil {
		return err
	}
	if cfg.Batch.PersistAllocation {
		t := report.AllocationTable{DB: store.DB(), Dialect: report.DuckDB, Table: "cost_allocation"}
		if err := a.persistBatchAllocation(ctx, rep.Processed, report.NewDuckDBSource(store.DB()), t); err != nil {
			return err
		}
	}
	if cfg.Batch.ExportDir != "" {
		if err := os.MkdirAll(cfg.Batch.ExportDir, 0o755); err != nil {
			return fmt.Errorf("create export directory: %w", err)
		}
		for _, t := range []string{"attribution", "coverage"} {
			p := filepath.Join(cfg.Batch.ExportDir, t+".parquet")
			if err := store.ExportParquet(ctx, t, p); err != nil {
				return fmt.Errorf("export %s: %w", t, err)
			}
			a.log.Info("exported", "table", t, "path", p)
		}
	}
	return nil
}
