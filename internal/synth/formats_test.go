package synth

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestFormatsReadableByDuckDB reads every format back with DuckDB's own
// readers and checks row counts and column types against what Generate
// reported.
func TestFormatsReadableByDuckDB(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		format, reader string
	}{
		{FormatJSONL, "read_json_auto"},
		{FormatCSV, "read_csv_auto"},
		{FormatParquet, "read_parquet"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Generate(context.Background(), Config{Seed: 3, AgentRequests: 1500, Users: 80, Format: tc.format}, dir)
			if err != nil {
				t.Fatal(err)
			}
			countWith := func(reader, glob string) int {
				t.Helper()
				var n int
				q := fmt.Sprintf("SELECT count(*) FROM %s(%s)", reader, sqlString(filepath.Join(dir, glob)))
				if err := db.QueryRow(q).Scan(&n); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return n
			}
			count := func(glob string) int { t.Helper(); return countWith(tc.reader, glob) }
			ext := tc.format
			if got := count("usage/ai_gateway_usage-*." + ext); got != res.UsageRows {
				t.Errorf("usage rows: read %d, generated %d", got, res.UsageRows)
			}
			if got := count("usage/endpoint_usage-*." + ext); got != res.LegacyRows {
				t.Errorf("legacy rows: read %d, generated %d", got, res.LegacyRows)
			}
			var distinct int
			q := fmt.Sprintf("SELECT count(DISTINCT invocation_id) FROM %s(%s)", tc.reader, sqlString(filepath.Join(dir, "usage/ai_gateway_usage-*."+ext)))
			if err := db.QueryRow(q).Scan(&distinct); err != nil {
				t.Fatal(err)
			}
			if distinct+res.LegacyRows != res.Invocations || res.UsageRows-distinct != res.Duplicates {
				t.Errorf("distinct usage invocations %d + legacy %d, want %d; duplicates %d, want %d",
					distinct, res.LegacyRows, res.Invocations, res.UsageRows-distinct, res.Duplicates)
			}
			// Agent logs: every request logged once per log kind, on time or late.
			payloads := count("agents*/*_payload." + ext)
			traces := count("agents*/*_traces." + ext)
			w := newWorld(Config{Seed: 3, AgentRequests: 1500, Users: 80}.WithDefaults())
			reqs := plan(w)
			var wantP, wantT int
			for i := range reqs {
				switch w.agents[reqs[i].agent].logs {
				case logPayload:
					wantP++
				case logTraces:
					wantT++
				default:
					wantP++
					wantT++
				}
			}
			if payloads != wantP || traces != wantT {
				t.Errorf("agent logs: payload %d traces %d, want %d and %d", payloads, traces, wantP, wantT)
			}
			if got := countWith("read_json_auto", TruthFile); got != res.Invocations {
				t.Errorf("truth lines %d, want %d", got, res.Invocations)
			}
			if tc.format == FormatParquet {
				// Databricks-like types survive into the file.
				var tt, rt, td string
				q := fmt.Sprintf("SELECT typeof(event_time), typeof(request_tags), typeof(token_details) FROM read_parquet(%s) LIMIT 1",
					sqlString(filepath.Join(dir, "usage/ai_gateway_usage-000.parquet")))
				if err := db.QueryRow(q).Scan(&tt, &rt, &td); err != nil {
					t.Fatal(err)
				}
				if tt != "TIMESTAMP" || rt != "MAP(VARCHAR, VARCHAR)" || td[:6] != "STRUCT" {
					t.Errorf("parquet types: event_time %s, request_tags %s, token_details %s", tt, rt, td)
				}
			}
		})
	}
}
