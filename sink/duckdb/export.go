package duckdb

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ExportParquet copies a table or view of the store (one of Objects) to a
// Parquet file at path, replacing it. DuckDB's COPY takes no bound parameter
// for the path, so the path goes in as a string literal with its quotes
// doubled; NUL and line breaks are refused outright.
func (s *Store) ExportParquet(ctx context.Context, table, path string) error {
	if !s.objects[table] {
		return fmt.Errorf("export parquet: %q is not a table or view of the store (have %s)", table, strings.Join(s.Objects(), ", "))
	}
	if path == "" {
		return fmt.Errorf("export parquet of %s: empty path", table)
	}
	if strings.ContainsAny(path, "\x00\n\r") {
		return fmt.Errorf("export parquet of %s: path %q contains NUL or a line break", table, path)
	}
	q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet)", quoteIdent(table), quoteString(path))
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("export parquet of %s to %s: %w", table, path, err)
	}
	return nil
}

// Objects lists the tables and views the store's DDL creates, sorted.
func (s *Store) Objects() []string {
	out := make([]string, 0, len(s.objects))
	for name := range s.objects {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// quoteString is s as a SQL string literal. DuckDB's standard strings treat
// backslash as an ordinary character, so doubling quotes is the whole escape.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
