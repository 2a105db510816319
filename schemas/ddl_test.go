package schemas

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDDLDuckDB(t *testing.T) {
	stmts, err := DDL("duckdb")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stmts {
		names = append(names, s.Name)
	}
	// The store's own objects, in this order; other files may add more.
	want := []string{"attribution", "dead_letters", "coverage", "checkpoints", "runs",
		"v_daily_user", "v_daily_team", "v_daily_model", "v_daily_agent", "v_coverage_daily"}
	var got []string
	for _, n := range names {
		if slices.Contains(want, n) {
			got = append(got, n)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DDL order = %v, want %v in this order", names, want)
	}
	create := regexp.MustCompile(`(?i)\bCREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?(TABLE|VIEW)\s+(IF\s+NOT\s+EXISTS\s+)?([a-z_0-9]+)`)
	for _, s := range stmts {
		var creates int
		for _, p := range s.Parts() {
			m := create.FindStringSubmatch(p)
			if m == nil {
				if !strings.HasPrefix(strings.ToUpper(stripComments(p)), "COMMENT ON ") {
					t.Errorf("%s: statement is neither CREATE nor COMMENT ON: %.60q", s.Name, p)
				}
				continue
			}
			creates++
			if m[5] != s.Name {
				t.Errorf("%s: file creates %q, want the object named by the file", s.Name, m[5])
			}
			idempotent := (m[3] == "TABLE" && m[4] != "") || (m[3] == "VIEW" && m[1] != "")
			if !idempotent {
				t.Errorf("%s: CREATE %s is not idempotent (use IF NOT EXISTS / OR REPLACE)", s.Name, m[3])
			}
		}
		if creates != 1 {
			t.Errorf("%s: %d CREATE statements, want 1", s.Name, creates)
		}
	}
}

func stripComments(p string) string {
	lines := strings.Split(p, "\n")
	for len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), "--") {
		lines = lines[1:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func TestDDLUnknownDialect(t *testing.T) {
	for _, d := range []string{"", "oracle", "../ddl", "duckdb/..", "DuckDB"} {
		if _, err := DDL(d); err == nil || !strings.Contains(err.Error(), "no DDL for dialect") {
			t.Errorf("DDL(%q) error = %v, want no DDL for dialect", d, err)
		}
	}
}

func TestStatementParts(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"one", "CREATE TABLE t (a INT)", []string{"CREATE TABLE t (a INT)"}},
		{"trailing semicolon and blank", "A;\n\n  B ;\n", []string{"A", "B"}},
		{"quote with semicolon", "COMMENT ON COLUMN t.a IS 'x; y''s';B", []string{"COMMENT ON COLUMN t.a IS 'x; y''s'", "B"}},
		{"quoted identifier", `SELECT "a;b" FROM t;`, []string{`SELECT "a;b" FROM t`}},
		{"line comment", "-- head; note\nA; -- tail;\n", []string{"-- head; note\nA"}},
		{"block comment", "/* ; */ A;/* only */;", []string{"/* ; */ A"}},
		{"empty", " ;; ", nil},
		{"unterminated quote", "A 'x;", []string{"A 'x;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Statement{SQL: tt.sql}.Parts()
			if !slices.Equal(got, tt.want) {
				t.Errorf("Parts(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}
