// Package duckdbtable reads gateway usage and agent requests from DuckDB tables
// into canonical records, pushing the time window into SQL. Decoding is ingest's.
package duckdbtable

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/obolus/obolus/ingest"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// QuoteTable validates a table name — name, schema.name or
// catalog.schema.name, each part a plain identifier — and returns it quoted.
func QuoteTable(table string) (string, error) {
	parts := strings.Split(table, ".")
	if len(parts) > 3 {
		return "", fmt.Errorf("table %q: more than catalog.schema.name", table)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("table %q: part %q is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", table, p)
		}
		parts[i] = `"` + p + `"` // the pattern admits no quote to escape
	}
	return strings.Join(parts, "."), nil
}

// Read reads the rows of table inside w as spec.Kind records (spec.Path and
// spec.Format are not used). Only the columns the kind reads are selected —
// payload tables carry large request and response columns — matched to the
// kind's column names without regard to case. The window is applied in SQL
// on the kind's time column as bound parameters (TIMESTAMP, TIMESTAMPTZ or
// epoch integer columns, in milliseconds or for spans nanoseconds; a time held as text is filtered only
// after decoding), and again on each decoded record, so the result does not
// depend on the column's type or the session time zone.
//
// Rows that cannot be used become dead letters with Source = table and
// Location "row N", N counting the rows the query returned. Stats count the
// rows read: rows that SQL left out are not in them.
func Read(ctx context.Context, db *sql.DB, table string, spec ingest.Spec, w ingest.Window, emit ingest.Emit) (ingest.Stats, error) {
	quoted, err := QuoteTable(table)
	if err != nil {
		return ingest.Stats{}, err
	}
	cols, err := columns(ctx, db, quoted)
	if err != nil {
		return ingest.Stats{}, fmt.Errorf("%s: %w", table, err)
	}
	query, args := buildQuery(quoted, spec.Kind, cols, w)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return ingest.Stats{}, fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	return ingest.ReadRows(ctx, rows, table, spec, w, emit)
}

// column is a table column: its name as the table spells it and its type.
type column struct{ name, typ string }

func columns(ctx context.Context, db *sql.DB, quoted string) ([]column, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoted+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]column, len(cts))
	for i, ct := range cts {
		out[i] = column{ct.Name(), strings.ToUpper(ct.DatabaseTypeName())}
	}
	return out, rows.Err()
}

// selectExpr reads UUIDs as their canonical text, and nested values that may
// hold UUIDs as JSON text: duckdb-go scans a UUID as 16 raw bytes, which
// would not read as the id it is. The decoder takes maps as JSON text too.
func selectExpr(c column) string {
	col := quoteIdent(c.name)
	switch {
	case c.typ == "UUID":
		return "CAST(" + col + " AS VARCHAR)"
	case strings.Contains(c.typ, "UUID"):
		return "CAST(to_json(" + col + ") AS VARCHAR)"
	}
	return col
}

// buildQuery selects the kind's columns, renamed to the kind's spelling, and
// filters on the first time column present.
func buildQuery(quoted string, kind ingest.Kind, cols []column, w ingest.Window) (string, []any) {
	byName := make(map[string]column, len(cols))
	for _, c := range cols {
		byName[strings.ToLower(c.name)] = c
	}
	var sel []string
	for _, want := range kind.Columns() {
		if c, ok := byName[strings.ToLower(want)]; ok && identRE.MatchString(want) {
			sel = append(sel, selectExpr(c)+" AS "+quoteIdent(want))
		}
	}
	if len(sel) == 0 {
		// Nothing this kind reads: each row will be dead for its first required column.
		sel = []string{"NULL AS _obolus_no_columns"}
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + quoted
	for _, tc := range kind.TimeColumns() {
		c, ok := byName[tc]
		if !ok {
			continue
		}
		var conds []string
		var args []any
		if !w.From.IsZero() {
			if cond, arg, ok := bound(c, w.From, ">=", kind.EpochUnit()); ok {
				conds, args = append(conds, cond), append(args, arg)
			}
		}
		if !w.To.IsZero() {
			if cond, arg, ok := bound(c, w.To, "<", kind.EpochUnit()); ok {
				conds, args = append(conds, cond), append(args, arg)
			}
		}
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
		return q, args
	}
	return q, nil
}

// bound is one side of the window as a condition on column c. The bound is
// rounded outwards to the column's precision (floor for >=, ceiling for <),
// so SQL never drops a row the exact check would keep. The value is bound as
// text with an explicit zone and cast, which makes the comparison exact
// whatever the session time zone. An integer column counts unit since the
// epoch (milliseconds, or nanoseconds for spans).
func bound(c column, t time.Time, op string, unit time.Duration) (string, any, bool) {
	t = t.UTC()
	col := quoteIdent(c.name)
	switch {
	case c.typ == "TIMESTAMPTZ" || c.typ == "TIMESTAMP WITH TIME ZONE":
		return col + " " + op + " CAST(? AS TIMESTAMPTZ)", round(t, time.Microsecond, op).Format("2006-01-02 15:04:05.000000") + "+00", true
	case strings.HasPrefix(c.typ, "TIMESTAMP") || c.typ == "DATETIME":
		return col + " " + op + " CAST(? AS TIMESTAMP)", round(t, time.Microsecond, op).Format("2006-01-02 15:04:05.000000"), true
	case c.typ == "BIGINT" || c.typ == "INTEGER" || c.typ == "HUGEINT" || c.typ == "UBIGINT":
		return col + " " + op + " ?", round(t, unit, op).UnixNano() / int64(unit), true
	}
	return "", nil, false
}

// round floors t to unit for a lower bound and ceils it for an upper one.
func round(t time.Time, unit time.Duration, op string) time.Time {
	f := t.Truncate(unit)
	if op == "<" && !f.Equal(t) {
		return f.Add(unit)
	}
	return f
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
