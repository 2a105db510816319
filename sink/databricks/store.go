// Package databricks writes obolus's tables to Databricks as Delta tables:
// attribution, dead letters, coverage, checkpoints and runs, each write one MERGE.
package databricks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	databricks "github.com/databricks/databricks-sql-go"

	"github.com/obolus/obolus/internal/dbsql"
	"github.com/obolus/obolus/schemas"
)

// Options tune a Store.
type Options struct {
	// StagingVolume, when set, is a /Volumes/<catalog>/<schema>/<volume>[/dir]
	// path: attribution writes upload one Parquet file there and MERGE from
	// it. Empty stages rows in the stage_attribution table with batched
	// INSERTs.
	StagingVolume string
	// LocalDir is where Parquet files are written before upload; "" is the
	// system temporary directory.
	LocalDir string
	// InsertParams caps the bound parameters of one staging INSERT; 0 means
	// DefaultInsertParams.
	InsertParams int
}

// DefaultInsertParams is the parameter budget of one staging INSERT. Larger
// statements stopped paying off on the local warehouse (see docs/databricks.md,
// "Staging") and stay well inside the warehouse's statement size limit.
const DefaultInsertParams = 8192

// Store is obolus's tables in one Databricks catalog and schema. Its methods
// are safe for concurrent use; each write is one statement, or a staging step
// followed by one MERGE, because the driver has no transactions.
type Store struct {
	db     *sql.DB
	schema dbsql.Schema
	opt    Options
}

// New returns a store over db writing to catalog.schema; the names are
// validated here. Call Init to create the tables.
func New(db *sql.DB, catalog, schema string, opt Options) (*Store, error) {
	sch, err := dbsql.NewSchema(catalog, schema)
	if err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if opt.StagingVolume != "" {
		if err := checkVolume(opt.StagingVolume); err != nil {
			return nil, fmt.Errorf("staging volume: %w", err)
		}
		opt.StagingVolume = strings.TrimSuffix(opt.StagingVolume, "/")
	}
	if opt.InsertParams <= 0 {
		opt.InsertParams = DefaultInsertParams
	}
	return &Store{db: db, schema: sch, opt: opt}, nil
}

// DB is the connection pool the store writes through.
func (s *Store) DB() *sql.DB { return s.db }

// Schema is where the store's tables live.
func (s *Store) Schema() dbsql.Schema { return s.schema }

// Table is the quoted name of one of the store's tables.
func (s *Store) Table(name string) string { return s.schema.Table(name) }

// attributionColumns are the attribution table's columns in DDL order.
var attributionColumns = schemas.AttributionColumns()

// dateParam binds a DATE.
func dateParam(name string, t time.Time) databricks.Parameter {
	return databricks.Parameter{Name: name, Type: databricks.SqlDate, Value: t.UTC().Format(time.DateOnly)}
}

// timeParam binds a TIMESTAMP, or NULL for the zero time.
func timeParam(name string, t time.Time) databricks.Parameter {
	if t.IsZero() {
		return databricks.Parameter{Name: name, Type: databricks.SqlVoid}
	}
	return databricks.Parameter{Name: name, Type: databricks.SqlTimestamp, Value: t.UTC().Format("2006-01-02T15:04:05.999999Z07:00")}
}

// nullTime is a scanned TIMESTAMP that may be NULL, in UTC.
func nullTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// execer is a connection pool or one pinned connection.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// exec runs one statement and wraps its error with what it was doing.
func (s *Store) exec(ctx context.Context, what, q string, args ...any) (sql.Result, error) {
	return execOn(ctx, s.db, what, q, args...)
}

func execOn(ctx context.Context, e execer, what, q string, args ...any) (sql.Result, error) {
	res, err := e.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

var errWindow = errors.New("set both ends, from before to, or neither")
