package main

import (
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/dbxrun"
)

func (a *cli) doctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the Databricks setup: access, source tables and columns, obolus objects, request tags",
		Long: `Checks, without writing data, what a Databricks run needs: that the warehouse
accepts the credentials, that every configured source table is readable and
has the columns obolus reads, that obolus init created its objects and they
can be modified, that the staging volume takes uploads, and what share of the
recent gateway rows carry the configured request tags — which decides how much
is attributed by id rather than by time window. Exits 1 if a check fails.`,
		Example: `  obolus doctor --config obolus.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			db, _, err := a.openDatabricks()
			if err != nil {
				return err
			}
			defer db.Close()
			checks, share := dbxrun.Doctor(ctx, db, app.DoctorOptions(a.cfg, db))
			w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			failed := 0
			for _, c := range checks {
				fmt.Fprintf(w, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
				if c.Status == dbxrun.CheckFail {
					failed++
				}
			}
			if share != nil && share.Rows > 0 {
				keys := make([]string, 0, len(share.ByKey))
				for k := range share.ByKey {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "\t  tag %s\t%d rows (%.1f%%)\n", k, share.ByKey[k], 100*float64(share.ByKey[k])/float64(share.Rows))
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("doctor: %s failed", plural(int64(failed), "check"))
			}
			return nil
		},
	}
}
