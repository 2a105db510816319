// Package sqlrows reads query results into canonical records: one loop for
// every table a store reads back.
package sqlrows

import (
	"context"
	"database/sql"
)

// Collect scans every row of rs into a T through the destinations targets
// gives for it, and closes rs.
func Collect[T any](rs *sql.Rows, targets func(*T) []any) ([]T, error) {
	defer rs.Close()
	var out []T
	for rs.Next() {
		var v T
		if err := rs.Scan(targets(&v)...); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// Querier runs a query: *sql.DB, *sql.Conn and *sql.Tx all fit.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Query runs query with args and collects its rows as Collect does.
func Query[T any](ctx context.Context, db Querier, query string, args []any, targets func(*T) []any) ([]T, error) {
	rs, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return Collect(rs, targets)
}
