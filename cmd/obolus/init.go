package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *cli) initCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create obolus's tables and views (safe to run again)",
		Long: `Creates the attribution, dead-letter, coverage, checkpoint and run tables and
the analyst views, with a comment on every column. With --target databricks
they are Delta tables in databricks.catalog.databricks.schema (the schema is
created when missing, as is the volume pull mode stages writes in); with
--target duckdb, the embedded store file. Objects that exist are left as they
are (views are replaced), so running init twice changes nothing.`,
		Example: `  obolus init --target databricks --config obolus.yaml
  obolus init --config obolus.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			switch target {
			case targetDatabricks:
				db, store, err := a.openDatabricks()
				if err != nil {
					return err
				}
				defer db.Close()
				names, err := store.Init(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%s: %d objects ready: %s\n", store.Schema(), len(names), strings.Join(names, ", "))
			case targetDuckDB:
				path := a.cfg.Store.DuckDB
				store, err := a.openStore(ctx)
				if err != nil {
					return err
				}
				if err := store.Close(); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%s: ready\n", path)
			default:
				return usageErrorf("--target %q: use duckdb or databricks", target)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "target", targetDuckDB, "duckdb (the embedded store) or databricks (the databricks section)")
	return cmd
}
