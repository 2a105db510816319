package batch

import (
	"context"
	"database/sql"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/ingest/duckdbtable"
)

// FileSource reads files (JSON Lines, CSV or Parquet) as spec describes.
func FileSource(spec ingest.Spec) Source { return fileSource{spec} }

// TableSource reads a table of the DuckDB database db as spec describes.
func TableSource(db *sql.DB, table string, spec ingest.Spec) Source {
	return tableSource{db: db, table: table, spec: spec}
}

type fileSource struct{ spec ingest.Spec }

func (f fileSource) Name() string { return string(f.spec.Kind) + " " + f.spec.Path }
func (f fileSource) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	return ingest.ReadFiles(ctx, f.spec, w, emit)
}

type tableSource struct {
	db    *sql.DB
	table string
	spec  ingest.Spec
}

func (t tableSource) Name() string { return string(t.spec.Kind) + " table " + t.table }
func (t tableSource) Read(ctx context.Context, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	return duckdbtable.Read(ctx, t.db, t.table, t.spec, w, emit)
}
