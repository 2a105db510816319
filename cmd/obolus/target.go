package main

import (
	"context"
	"database/sql"

	"github.com/spf13/cobra"

	"github.com/obolus/obolus/sink/report"
)

// addTargetFlag adds --target to a command that reads or writes the store.
func addTargetFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "target", targetDuckDB, "the store: duckdb (the embedded file, store.duckdb) or databricks (the Delta tables of the databricks section)")
}

// readStore is the store a read-only command reads, as --target names it.
type readStore struct {
	DB *sql.DB
	// Report is where a report reads attribution (and billing) from.
	Report report.Source
	// Attribution is the attribution table's quoted name.
	Attribution string
	Close       func() error
}

// openReadStore opens the store --target names for reading. The embedded
// store must exist (it is opened read-only); the Delta tables are read
// through the databricks section's warehouse.
func (a *cli) openReadStore(ctx context.Context, target string) (*readStore, error) {
	switch target {
	case targetDuckDB:
		store, err := a.openStoreReadOnly(ctx)
		if err != nil {
			return nil, err
		}
		return &readStore{DB: store.DB(), Report: report.NewDuckDBSource(store.DB()), Attribution: `"attribution"`, Close: store.Close}, nil
	case targetDatabricks:
		db, store, err := a.openDatabricks()
		if err != nil {
			return nil, err
		}
		d := a.cfg.Databricks
		src := report.Source{DB: db, Dialect: report.Databricks, Tables: report.DatabricksTables(d.Catalog, d.Schema)}
		return &readStore{DB: db, Report: src, Attribution: store.Table("attribution"), Close: db.Close}, nil
	default:
		return nil, usageErrorf("--target %q: use %s or %s", target, targetDuckDB, targetDatabricks)
	}
}
