package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/app"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// pushdownCmd groups what belongs to pushdown mode outside obolus batch.
func (a *cli) pushdownCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pushdown",
		Short: "Pushdown mode as a Databricks job of its own",
	}
	cmd.AddCommand(a.pushdownRenderCmd())
	return cmd
}

func (a *cli) pushdownRenderCmd() *cobra.Command {
	var out, viewsOut, now string
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Write the pushdown batch run as one SQL script a scheduled SQL task runs without obolus",
		Long: `Writes one self-contained SQL script that does on a SQL warehouse what
obolus batch --target databricks --mode pushdown does for the configured job:
it reads the job's checkpoint, computes the window (batch.lookback,
batch.agent_margin) ending at current_timestamp(), loads the price list and
org directory, MERGEs the window's attribution, refreshes coverage,
reconciles and advances the checkpoint. It connects to the warehouse once, to read the
source tables' columns. Schedule it with deploy/databricks/databricks.yml.

With match.calibrate it computes the run's calibration table in SQL, as
obolus batch does in Go; it records the run in runs, reconciled, and fails
before the checkpoint moves when the run does not reconcile. What it leaves
out: docs/databricks.md, "Databricks job".`,
		Example: `  obolus pushdown render --config obolus.yaml --out deploy/databricks/obolus_job.sql --views-out deploy/databricks/obolus_views.sql`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var at time.Time
			if now != "" {
				t, err := time.Parse(time.RFC3339Nano, now)
				if err != nil {
					return usageErrorf("--now %q: want an RFC 3339 time: %v", now, err)
				}
				at = t
			}
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			db, store, err := a.openDatabricks()
			if err != nil {
				return err
			}
			defer db.Close()
			script, err := app.PushdownScript(ctx, a.cfg, db, store, at)
			if err != nil {
				return err
			}
			if viewsOut != "" {
				views, err := databrickssink.ViewsScript(store.Schema())
				if err != nil {
					return err
				}
				if err := os.WriteFile(viewsOut, []byte(views), 0o644); err != nil {
					return fmt.Errorf("write views script: %w", err)
				}
				fmt.Fprintf(a.out, "wrote %s\n", viewsOut)
			}
			if out == "" {
				_, err = fmt.Fprint(a.out, script)
				return err
			}
			if err := os.WriteFile(out, []byte(script), 0o644); err != nil {
				return fmt.Errorf("write script: %w", err)
			}
			fmt.Fprintf(a.out, "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the script to (default: standard output)")
	cmd.Flags().StringVar(&viewsOut, "views-out", "", "also write the analyst views of the schema as a SQL script, for the bundle's views job")
	cmd.Flags().StringVar(&now, "now", "", "for tests: the run's time as RFC 3339 instead of current_timestamp() when the script runs")
	_ = cmd.Flags().MarkHidden("now")
	return cmd
}
