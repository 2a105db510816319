package report

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"
)

// databricksOnDuckDB runs the report's Databricks SQL on DuckDB, rewriting
// only what the two spell differently (backtick quoting, STRING), so the
// Databricks dialect's queries are exercised for real.
type databricksOnDuckDB struct {
	conn *sql.Conn
	seen []string
}

func (d *databricksOnDuckDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	d.seen = append(d.seen, q)
	q = strings.ReplaceAll(q, "`", `"`)
	q = strings.ReplaceAll(q, " AS STRING)", " AS VARCHAR)")
	q = strings.ReplaceAll(q, "get_json_object(", "json_extract_string(")
	return d.conn.QueryContext(ctx, q, args...)
}

// builtMarkdown builds the report from src and renders it as Markdown.
func builtMarkdown(t *testing.T, src Source, opt Options) string {
	t.Helper()
	rep, err := Build(context.Background(), src, opt)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDatabricksDialect(t *testing.T) {
	ctx := context.Background()
	s := fixtureStore(t)
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Databricks' timestamp_micros, which DuckDB calls make_timestamp.
	if _, err := conn.ExecContext(ctx, "CREATE TEMP MACRO timestamp_micros(us) AS make_timestamp(us)"); err != nil {
		t.Fatal(err)
	}
	// system.billing.usage with the gateway fields under their GA names.
	if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE billing_usage_ga AS SELECT * REPLACE ("+gaUsageMetadata+" AS usage_metadata) FROM billing_usage"); err != nil {
		t.Fatal(err)
	}
	dbx := &databricksOnDuckDB{conn: conn}
	opt := Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam, ByModel}}
	want := builtMarkdown(t, NewDuckDBSource(s.DB()), opt)
	for _, billing := range []string{"billing_usage", "billing_usage_ga"} {
		got := builtMarkdown(t, Source{DB: dbx, Dialect: Databricks, Tables: Tables{Attribution: "main.attribution", BillingUsage: billing, ListPrices: "billing_list_prices"}}, opt)
		if got != want {
			t.Errorf("the Databricks dialect's report over %s differs:\n%s\n--- want ---\n%s", billing, got, want)
		}
	}
	for _, q := range dbx.seen {
		if strings.Contains(q, `"`) || strings.Contains(q, "VARCHAR") || strings.Contains(q, "make_timestamp") || strings.Contains(q, "json_extract") {
			t.Errorf("Databricks SQL uses DuckDB spelling: %s", q)
		}
	}
	if !strings.Contains(strings.Join(dbx.seen, "\n"), "`main`.`attribution`") {
		t.Errorf("qualified table not quoted with backticks: %v", dbx.seen)
	}
}
