package score

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(t.TempDir(), "score.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestLoadRows(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	exec(t, db, `CREATE TABLE attribution (invocation_id VARCHAR, end_user VARCHAR, match_method VARCHAR, weight DOUBLE, version BIGINT, team VARCHAR)`)
	ins := `INSERT INTO attribution VALUES (?, ?, ?, ?, ?, 'x')`
	exec(t, db, ins, "i1", "ana", "trace_id", 1.0, 1)
	// i2 was first unattributed, then restated once its late request arrived.
	exec(t, db, ins, "i2", "sp", "unattributed", 1.0, 1)
	exec(t, db, ins, "i2", "ben", "request_id", 1.0, 2)
	// i3 is split; both rows belong to the latest version.
	exec(t, db, ins, "i3", "ana", "time_window_split", 0.5, 3)
	exec(t, db, ins, "i3", "ben", "time_window_split", 0.5, 3)
	exec(t, db, `CREATE SCHEMA mart`)
	exec(t, db, `CREATE TABLE mart.attr (invocation_id VARCHAR, end_user VARCHAR, match_method VARCHAR, weight DOUBLE)`)
	exec(t, db, `INSERT INTO mart.attr VALUES ('i1', 'ana', 'trace_id', 1), ('i2', NULL, 'unattributed', 1)`)

	key := func(rs []Row) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.InvocationID+"/"+r.EndUser+"/"+r.MatchMethod)
		}
		slices.Sort(out)
		return out
	}
	rows, err := LoadRows(ctx, db, "attribution")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := key(rows), []string{"i1/ana/trace_id", "i2/ben/request_id", "i3/ana/time_window_split", "i3/ben/time_window_split"}; !slices.Equal(got, want) {
		t.Errorf("versioned table: %v, want %v", got, want)
	}
	rows, err = LoadRows(ctx, db, "mart.attr")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := key(rows), []string{"i1/ana/trace_id", "i2//unattributed"}; !slices.Equal(got, want) {
		t.Errorf("schema-qualified table: %v, want %v", got, want)
	}
	truth := truthOf("i1", "ana", "i2", "ben", "i3", "ben")
	rows, _ = LoadRows(ctx, db, "attribution")
	if r := Score(truth, rows); !near(r.Recall, 2.5/3) || !near(r.Precision, 2.5/3) {
		t.Errorf("score %+v", r)
	}
}

func TestLoadRowsRejects(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	exec(t, db, `CREATE TABLE nullweight (invocation_id VARCHAR, end_user VARCHAR, match_method VARCHAR, weight DOUBLE)`)
	exec(t, db, `INSERT INTO nullweight VALUES ('i1', 'ana', 'trace_id', NULL)`)
	exec(t, db, `CREATE TABLE bigweight (invocation_id VARCHAR, end_user VARCHAR, match_method VARCHAR, weight DOUBLE)`)
	exec(t, db, `INSERT INTO bigweight VALUES ('i1', 'ana', 'trace_id', 2)`)
	exec(t, db, `CREATE TABLE noid (invocation_id VARCHAR, end_user VARCHAR, match_method VARCHAR, weight DOUBLE)`)
	exec(t, db, `INSERT INTO noid VALUES (NULL, 'ana', 'trace_id', 1)`)
	exec(t, db, `CREATE TABLE nocols (invocation_id VARCHAR)`)
	for _, tc := range []struct{ table, want string }{
		{"attribution; DROP TABLE x", "not a plain identifier"},
		{`"quoted"`, "not a plain identifier"},
		{"a.b.c.d", "catalog.schema.table"},
		{"", "catalog.schema.table"},
		{"1table", "not a plain identifier"},
		{"missing_table", "missing_table"},
		{"nullweight", "row 1 (invocation i1): weight is NULL"},
		{"bigweight", "weight 2 is outside"},
		{"noid", "row 1: invocation_id is empty"},
		{"nocols", "nocols"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			_, err := LoadRows(ctx, db, tc.table)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestQuoteTable(t *testing.T) {
	for in, want := range map[string]string{
		"attribution":      `"attribution"`,
		"main.attribution": `"main"."attribution"`,
		"cat.sch.tbl_2":    `"cat"."sch"."tbl_2"`,
		"_private":         `"_private"`,
	} {
		got, err := QuoteTable(in)
		if err != nil || got != want {
			t.Errorf("QuoteTable(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
