// Package sqlrows reads query results into canonical records: one loop for
// every table a store reads back.
package sqlrows

import "database/sql"

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
