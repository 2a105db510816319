package pushdown

import (
	"math"
	"strings"
	"testing"
	"time"

	databricks "github.com/databricks/databricks-sql-go"
)

func TestLiteral(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"plain string", "team-a b", "'team-a b'"},
		{"empty string", "", "''"},
		{"quote", "o'brien", "concat('o', chr(39), 'brien')"},
		{"backslash and quote only", `\'`, "concat(chr(92), chr(39))"},
		{"spark substitution", "${x}", "concat(chr(36), chr(123), 'x', chr(125))"},
		{"newline", "a\nb", "concat('a', chr(10), 'b')"},
		{"non-ascii stays", "zoë", "'zoë'"},
		{"bigint", int64(-42), "CAST(-42 AS BIGINT)"},
		{"double", 0.1, "CAST(1e-01 AS DOUBLE)"},
		{"double with digits", 2.5e-7, "CAST(2.5e-07 AS DOUBLE)"},
		{"time", time.Date(2026, 11, 1, 2, 3, 4, 5000, time.FixedZone("x", 3600)), "TIMESTAMP '2026-11-01 01:03:04.000005'"},
		{"timestamp parameter", databricks.Parameter{Name: "t", Type: databricks.SqlTimestamp, Value: "2026-11-01T00:00:00Z"}, "TIMESTAMP '2026-11-01 00:00:00'"},
		{"date parameter", databricks.Parameter{Type: databricks.SqlDate, Value: "2026-11-01"}, "DATE '2026-11-01'"},
		{"null parameter", databricks.Parameter{Type: databricks.SqlVoid}, "NULL"},
		{"untyped string parameter", databricks.Parameter{Name: "job", Value: "j'1"}, "concat('j', chr(39), '1')"},
		{"bigint parameter", databricks.Parameter{Type: databricks.SqlBigInt, Value: "7"}, "CAST(7 AS BIGINT)"},
		{"double parameter", databricks.Parameter{Type: databricks.SqlDouble, Value: "0.75"}, "CAST(7.5e-01 AS DOUBLE)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Literal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Literal(%#v) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), struct{}{}, databricks.Parameter{Type: databricks.SqlTimestamp, Value: "yesterday"}} {
		if got, err := Literal(bad); err == nil {
			t.Errorf("Literal(%#v) = %s, want an error", bad, got)
		}
	}
}

func TestInline(t *testing.T) {
	cases := []struct {
		name  string
		st    Statement
		exprs map[string]string
		want  string
		err   string
	}{
		{"named to variables and literals", Statement{SQL: "SELECT :a, :b, ':a', \"x:a\" -- :a\n, x::INT, :a",
			Args: []any{databricks.Parameter{Name: "b", Value: "it's"}}}, map[string]string{"a": "system.session.v"},
			"SELECT system.session.v, concat('it', chr(39), 's'), ':a', \"x:a\" -- :a\n, x::INT, system.session.v", ""},
		{"positional", Statement{SQL: "VALUES (?, ?, '?', ?) /* ? */", Args: []any{"k", 1.5, databricks.Parameter{Type: databricks.SqlVoid}}}, nil,
			"VALUES ('k', CAST(1.5e+00 AS DOUBLE), '?', NULL) /* ? */", ""},
		{"unbound marker", Statement{SQL: "SELECT :nope"}, nil, "", ":nope has no value"},
		{"too few positional", Statement{SQL: "SELECT ?, ?", Args: []any{"a"}}, nil, "", "more ? markers"},
		{"too many positional", Statement{SQL: "SELECT ?", Args: []any{"a", "b"}}, nil, "", "2 positional parameters for 1"},
		{"unterminated", Statement{SQL: "SELECT 'x"}, nil, "", "unterminated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.st.Inline(tc.exprs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"statements and comments", "-- head\nSELECT 1;\n-- about two\nSELECT ';', \";\" /* ; */;\n-- trailing only\n",
			[]string{"-- head\nSELECT 1", "-- about two\nSELECT ';', \";\" /* ; */"}},
		{"no final semicolon", "SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"empty statements dropped", " ; ;\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitStatements(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
