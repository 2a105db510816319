package score

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// LoadRows reads invocation_id, end_user, match_method and weight from an
// attribution table. table is a name or a dotted catalog.schema.table path;
// each part must be a plain identifier, and is quoted.
//
// If the table keeps restatements (a version column), only each invocation's
// latest version is read: earlier answers were superseded, and counting them
// would score one invocation several times.
func LoadRows(ctx context.Context, db *sql.DB, table string) ([]Row, error) {
	name, err := QuoteTable(table)
	if err != nil {
		return nil, err
	}
	return LoadQuoted(ctx, db, name)
}

// LoadQuoted is LoadRows for a table name already validated and quoted in
// the database's dialect (a Delta table: `catalog`.`schema`.`attribution`).
func LoadQuoted(ctx context.Context, db *sql.DB, name string) ([]Row, error) {
	table := name
	versioned, err := hasColumn(ctx, db, name, "version")
	if err != nil {
		return nil, err
	}
	hasConf, err := hasColumn(ctx, db, name, "match_confidence")
	if err != nil {
		return nil, err
	}
	conf := "CAST(NULL AS DOUBLE) AS match_confidence"
	if hasConf {
		conf = "match_confidence"
	}
	query := "SELECT invocation_id, end_user, match_method, weight, " + conf + " FROM " + name
	if versioned {
		query = `SELECT invocation_id, end_user, match_method, weight, match_confidence FROM (
	SELECT invocation_id, end_user, match_method, weight, ` + conf + `, version,
	       max(version) OVER (PARTITION BY invocation_id) AS latest
	FROM ` + name + `) AS t
WHERE version = latest OR (version IS NULL AND latest IS NULL)`
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("score: read %s: %w", table, err)
	}
	defer rows.Close()
	var out []Row
	for n := 1; rows.Next(); n++ {
		var id, user, method sql.NullString
		var weight, confidence sql.NullFloat64
		if err := rows.Scan(&id, &user, &method, &weight, &confidence); err != nil {
			return nil, fmt.Errorf("score: %s row %d: %w", table, n, err)
		}
		switch {
		case !id.Valid || id.String == "":
			return nil, fmt.Errorf("score: %s row %d: invocation_id is empty", table, n)
		case !method.Valid || method.String == "":
			return nil, fmt.Errorf("score: %s row %d (invocation %s): match_method is empty", table, n, id.String)
		case !weight.Valid:
			return nil, fmt.Errorf("score: %s row %d (invocation %s): weight is NULL", table, n, id.String)
		case weight.Float64 < 0 || weight.Float64 > 1:
			return nil, fmt.Errorf("score: %s row %d (invocation %s): weight %v is outside [0, 1]", table, n, id.String, weight.Float64)
		}
		c := math.NaN()
		if confidence.Valid {
			c = confidence.Float64
		}
		out = append(out, Row{InvocationID: id.String, EndUser: user.String, MatchMethod: method.String, Weight: weight.Float64, Confidence: c})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("score: read %s: %w", table, err)
	}
	return out, nil
}

// hasColumn asks for the table's columns through an empty result, which
// works the same on DuckDB and Databricks.
func hasColumn(ctx context.Context, db *sql.DB, quotedTable, column string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quotedTable+" LIMIT 0")
	if err != nil {
		return false, fmt.Errorf("score: read %s: %w", quotedTable, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return false, fmt.Errorf("score: columns of %s: %w", quotedTable, err)
	}
	for _, c := range cols {
		if strings.EqualFold(c, column) {
			return true, nil
		}
	}
	return false, nil
}

// QuoteTable validates a table name of one to three dot-separated plain
// identifiers (letters, digits, underscores; not starting with a digit) and
// returns it with each part double-quoted.
func QuoteTable(table string) (string, error) {
	parts := strings.Split(table, ".")
	if table == "" || len(parts) > 3 {
		return "", fmt.Errorf("score: table %q: use table, schema.table or catalog.schema.table", table)
	}
	for i, p := range parts {
		if !plainIdent(p) {
			return "", fmt.Errorf("score: table %q: part %q is not a plain identifier (letters, digits, _; not starting with a digit)", table, p)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

func plainIdent(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
