package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/ingest/duckdbtable"
	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/dbxrun"
	"github.com/obolus/obolus/schemas"
	"github.com/obolus/obolus/sink/duckdb"
)

func (a *cli) doctorCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a setup: access, sources, obolus objects, request tags (Databricks) or the embedded store and its sources",
		Long: `Checks, without writing data, what a Databricks run needs: that the warehouse
accepts the credentials, that every configured source table is readable and
has the columns obolus reads, that obolus init created its objects and they
can be modified, that the staging volume takes uploads, and what share of the
recent gateway rows carry the configured request tags — which decides how much
is attributed by id rather than by time window. With --target duckdb (the
default when no databricks.host is configured) it checks the embedded store
instead: that it exists and opens read-only, that it holds every table and
view, and that every configured source file or table is there. Exits 1 if a
check fails.`,
		Example: `  obolus doctor --config obolus.yaml
  obolus doctor --target duckdb --config obolus.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := a.load(ctx); err != nil {
				return err
			}
			defer a.close(ctx)
			if target == "" {
				target = targetDuckDB
				if a.cfg.Databricks.Enabled() {
					target = targetDatabricks
				}
			}
			var (
				checks []dbxrun.Check
				share  *dbxrun.TagShare
			)
			switch target {
			case targetDatabricks:
				db, _, err := a.openDatabricks()
				if err != nil {
					return err
				}
				defer db.Close()
				checks, share = dbxrun.Doctor(ctx, db, app.DoctorOptions(a.cfg, db))
			case targetDuckDB:
				checks = a.doctorDuckDB(ctx)
			default:
				return usageErrorf("--target %q: use %s or %s", target, targetDuckDB, targetDatabricks)
			}
			w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			failed := 0
			for _, c := range checks {
				// The status is padded to its widest word, so that a line
				// reads the same whatever other checks found.
				fmt.Fprintf(w, "%-4s\t%s\t%s\n", c.Status, c.Name, c.Detail)
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
	cmd.Flags().StringVar(&target, "target", "", "what to check: duckdb (the embedded store and its sources) or databricks (default: databricks when databricks.host is set)")
	return cmd
}

// doctorDuckDB checks, without writing, the embedded store and the sources
// a batch run reads.
func (a *cli) doctorDuckDB(ctx context.Context) []dbxrun.Check {
	var out []dbxrun.Check
	add := func(name, status, format string, args ...any) {
		out = append(out, dbxrun.Check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
	}
	path := a.cfg.Store.DuckDB
	store, err := duckdb.OpenReadOnly(ctx, path)
	if err != nil {
		add("store "+path, dbxrun.CheckFail, "%v", err)
	} else {
		defer store.Close()
		add("store "+path, dbxrun.CheckOK, "opens read-only; schema version %d", schemas.StoreVersion)
		var absent []string
		for _, name := range store.Objects() {
			rows, err := store.DB().QueryContext(ctx, "SELECT * FROM "+`"`+name+`"`+" LIMIT 0") // DDL names are plain identifiers
			if err != nil {
				absent = append(absent, name)
				continue
			}
			rows.Close()
		}
		if len(absent) > 0 {
			add("objects", dbxrun.CheckFail, "missing: %s — run obolus init (or a batch run) with this version", strings.Join(absent, ", "))
		} else {
			add("objects", dbxrun.CheckOK, "%d tables and views", len(store.Objects()))
		}
	}
	if len(a.cfg.Sources) == 0 {
		add("sources", dbxrun.CheckFail, "none configured; add a usage source (see deploy/obolus.example.yaml)")
	}
	for _, s := range a.cfg.Sources {
		if s.Table != "" {
			name := "read " + s.Kind + " table " + s.Table
			if store == nil {
				add(name, dbxrun.CheckFail, "no store to read it from")
				continue
			}
			var n int64
			quoted, err := duckdbtable.QuoteTable(s.Table)
			if err == nil {
				err = store.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+quoted).Scan(&n)
			}
			if err != nil {
				add(name, dbxrun.CheckFail, "%v", err)
			} else {
				add(name, dbxrun.CheckOK, "%d rows", n)
			}
			continue
		}
		name := "read " + s.Kind + " " + s.Path
		files, err := filepath.Glob(s.Path)
		switch {
		case err != nil:
			add(name, dbxrun.CheckFail, "%v", err)
		case len(files) == 0:
			add(name, dbxrun.CheckWarn, "no file matches yet")
		default:
			add(name, dbxrun.CheckOK, "%s", plural(int64(len(files)), "file"))
		}
	}
	// A sample of the usage and the agent logs: tag keys spelled almost
	// like a configured key, and agent logs that disagree.
	cfg := *a.cfg
	var db *sql.DB
	if store != nil {
		db = store.DB()
	} else {
		// Without the store only the files can be read.
		cfg.Sources = slices.DeleteFunc(slices.Clone(cfg.Sources), func(s config.Source) bool { return s.Table != "" })
	}
	usage, agents, served := app.EmbeddedSources(&cfg, db)
	if sv, err := batch.SurveySources(ctx, usage, agents, served, ingest.Window{}, a.cfg.MatchConfig(), dbxrun.SurveyRows); err != nil {
		add("survey", dbxrun.CheckWarn, "%v", err)
	} else {
		out = append(out, dbxrun.SurveyChecks(sv, a.cfg.MatchConfig())...)
	}
	if store != nil {
		names := map[string]string{}
		for _, s := range a.cfg.Sources {
			if s.ServicePrincipal != "" && s.AgentEndpoint != "" {
				names[s.ServicePrincipal] = s.AgentEndpoint
			}
		}
		if cal, err := store.Calibration(ctx, ""); err != nil {
			add("calibration", dbxrun.CheckWarn, "%v", err)
		} else {
			out = append(out, dbxrun.CalibrationChecks(cal, names)...)
		}
	}
	return out
}
