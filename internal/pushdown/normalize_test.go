package pushdown

import (
	"strings"
	"testing"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
)

// The SQL normalisation of trace ids gives what enrich.NormalizeTraceID
// gives, run on the local warehouse through the driver.
func TestTraceKeySQLMatchesGo(t *testing.T) {
	hex := "4bf92f3577b34da6a3ce929d0e0e4736"
	inputs := []string{
		"tr-" + hex, "TR-" + hex, "tr-" + strings.ToUpper(hex), "trace:/main.agents/" + hex, "trace:/a/b/" + hex,
		hex, strings.ToUpper(hex), "  " + hex + "  ", "00000000000000000000000000000000", "tr-00000000000000000000000000000000",
		"00-" + hex + "-00f067aa0ba902b7-01", "00-" + strings.ToUpper(hex) + "-00F067AA0BA902B7-01",
		"01-" + hex + "-00f067aa0ba902b7-01-extra-fields", "00-" + hex + "-00f067aa0ba902b7-01-extra",
		"ff-" + hex + "-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-" + hex + "-0000000000000000-01", "00-" + hex + "-00f067aa0ba902b7-1", "00-" + hex[:31] + "-00f067aa0ba902b7-01",
		"tr-short", "Some-Other-ID", "", " ", "trace:/loc/", "tr-", "x'y", `back\slash`, "tr-" + hex + "0", "ünïcode-ID",
	}
	wh := dbsqltest.Start(t, warehouse.Config{})
	db := dbsqltest.Open(t, wh.Config)
	values := strings.TrimSuffix(strings.Repeat("(?, ?), ", len(inputs)), ", ")
	args := make([]any, 0, 2*len(inputs))
	for i, in := range inputs {
		args = append(args, int64(i), in)
	}
	q := "WITH vals AS (SELECT * FROM (VALUES " + values + ") AS v(n, raw)),\n" +
		traceKeyCTE("keys", "vals", "raw") + " done AS (SELECT n, trace_key FROM keys)\nSELECT n, trace_key FROM done ORDER BY n"
	rows, err := db.QueryContext(dbsqltest.Context(t), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var n int64
		var got *string
		if err := rows.Scan(&n, &got); err != nil {
			t.Fatal(err)
		}
		seen++
		want := enrich.NormalizeTraceID(inputs[n])
		if got == nil || *got != want {
			t.Errorf("%q: SQL gives %v, Go gives %q", inputs[n], got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(inputs) {
		t.Fatalf("got %d rows for %d inputs", seen, len(inputs))
	}
}
