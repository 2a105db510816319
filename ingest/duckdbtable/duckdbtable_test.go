package duckdbtable

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// openDB opens a DuckDB file in a temporary directory; dsnOpts are appended
// to the DSN (DuckDB settings such as TimeZone).
func openDB(t testing.TB, dsnOpts string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(t.TempDir(), "obolus.duckdb")+dsnOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
}

const usageDDL = `CREATE TABLE usage (
	account_id VARCHAR, workspace_id VARCHAR, request_id VARCHAR, schema_version INTEGER,
	endpoint_id VARCHAR, endpoint_name VARCHAR, endpoint_tags MAP(VARCHAR, VARCHAR),
	endpoint_metadata STRUCT(creator VARCHAR, destinations STRUCT(name VARCHAR, traffic_percent DOUBLE)[]),
	event_time TIMESTAMP, latency_ms BIGINT, destination_type VARCHAR, destination_name VARCHAR,
	destination_id VARCHAR, destination_model VARCHAR, requester VARCHAR, requester_type VARCHAR,
	ip_address VARCHAR, url VARCHAR, user_agent VARCHAR, api_type VARCHAR, request_tags MAP(VARCHAR, VARCHAR),
	input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT,
	token_details STRUCT(cache_read_input_tokens BIGINT, cache_creation_input_tokens BIGINT, output_reasoning_tokens BIGINT),
	status_code INTEGER, invocation_id VARCHAR)`

// fillUsage inserts n good rows, one a minute from 10:00, and four bad rows
// at 10:15.
func fillUsage(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	exec(t, db, usageDDL, fmt.Sprintf(`INSERT INTO usage
		SELECT 'acc-1', '1001', 'req-' || (i // 3), 1, 'ep-1', 'gateway', MAP {'team': 'ml'},
			{'creator': 'admin', 'destinations': [{'name': 'gpt', 'traffic_percent': 100.0}]},
			TIMESTAMP '2026-03-01 10:00:00' + to_microseconds(i * 60000000 + i * 123),
			10 * i, 'FOUNDATION_MODEL', 'databricks-gpt-5-mini', 'dest-1', 'gpt-5-mini', 'sp-' || (i %% 3), 'SERVICE_PRINCIPAL',
			NULL, 'https://ws/ai-gateway/mlflow/v1/chat/completions', 'openai-python/1.52.0', 'mlflow/v1/chat/completions',
			CASE WHEN i %% 4 = 0 THEN NULL ELSE MAP {'mlflow_trace_id': 'tr-' || i, 'gone': NULL} END,
			100 + i, i %% 7, 100 + i + i %% 7,
			{'cache_read_input_tokens': i %% 5, 'cache_creation_input_tokens': NULL, 'output_reasoning_tokens': i %% 2},
			200, 'inv-' || i
		FROM range(%d) r(i)`, n),
		`INSERT INTO usage (invocation_id, event_time, requester, input_tokens, schema_version) VALUES
			(NULL, TIMESTAMP '2026-03-01 10:15:00', 'sp-0', 1, 1),
			('inv-neg', TIMESTAMP '2026-03-01 10:15:00', 'sp-0', -4, 1),
			('inv-v9', TIMESTAMP '2026-03-01 10:15:00', 'sp-0', 1, 9),
			('inv-early', TIMESTAMP '2026-03-01 09:00:00', 'sp-0', 1, 1)`)
}

type result struct {
	stats ingest.Stats
	usage []schemas.UsageEvent
	agent []schemas.AgentRequest
	dead  []schemas.DeadLetter
}

func (r *result) emit() ingest.Emit {
	return ingest.Emit{
		Usage:  func(b []schemas.UsageEvent) error { r.usage = append(r.usage, b...); return nil },
		Agents: func(b []schemas.AgentRequest) error { r.agent = append(r.agent, b...); return nil },
		Dead:   func(d schemas.DeadLetter) error { r.dead = append(r.dead, d); return nil },
	}
}

func readTable(t testing.TB, db *sql.DB, table string, spec ingest.Spec, w ingest.Window) result {
	t.Helper()
	var r result
	st, err := Read(context.Background(), db, table, spec, w, r.emit())
	if err != nil {
		t.Fatal(err)
	}
	r.stats = st
	if !st.Balanced() || st.Emitted != int64(len(r.usage)+len(r.agent)) || st.Dead != int64(len(r.dead)) {
		t.Fatalf("stats do not reconcile: %+v", st)
	}
	return r
}

func TestReadUsage(t *testing.T) {
	db := openDB(t, "")
	fillUsage(t, db, 100)
	w := ingest.Window{From: t0.Add(10 * time.Minute), To: t0.Add(40 * time.Minute)}
	r := readTable(t, db, "usage", ingest.Spec{Kind: ingest.KindUsage}, w)
	// 30 good rows and 3 bad ones fall in the window; SQL leaves the rest out.
	if r.stats != (ingest.Stats{Rows: 33, Emitted: 30, Dead: 3}) {
		t.Fatalf("stats %+v", r.stats)
	}
	got := r.usage[1] // i = 11
	want := schemas.UsageEvent{
		InvocationID: "inv-11", RequestID: "req-3", AccountID: "acc-1", WorkspaceID: "1001", SchemaVersion: 1,
		EventTime: t0.Add(11*time.Minute + 11*123*time.Microsecond), EndpointID: "ep-1", EndpointName: "gateway",
		DestinationName: "databricks-gpt-5-mini", DestinationModel: "gpt-5-mini", Requester: "sp-2",
		RequestTags: map[string]string{"mlflow_trace_id": "tr-11"},
		InputTokens: 111, OutputTokens: 4, TotalTokens: 115, TokenDetails: schemas.TokenDetails{CacheReadInputTokens: 1, OutputReasoningTokens: 1},
		StatusCode: 200, LatencyMS: 110, Source: schemas.SourceAIGateway,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("row:\n got %+v\nwant %+v", got, want)
	}
	if r.usage[2].RequestTags != nil { // i = 12: NULL map
		t.Fatalf("NULL map: %#v", r.usage[2].RequestTags)
	}
	var dead []string
	for _, d := range r.dead {
		if d.Source != "usage" || d.Kind != schemas.KindUsage || !strings.HasPrefix(d.Record, "{") {
			t.Errorf("dead letter %+v", d)
		}
		dead = append(dead, d.Location+" "+d.Field+": "+d.Reason)
	}
	if got := strings.Join(dead, "; "); got != "row 31 invocation_id: missing; row 32 input_tokens: negative: -4; row 33 schema_version: unknown schema_version 9" {
		t.Fatalf("dead letters: %s", got)
	}
	// Without a window every row is read.
	r = readTable(t, db, "main.usage", ingest.Spec{Kind: ingest.KindUsage}, ingest.Window{})
	if r.stats != (ingest.Stats{Rows: 104, Emitted: 101, Dead: 3}) {
		t.Fatalf("unbounded stats %+v", r.stats)
	}
	var catalog string
	if err := db.QueryRow("SELECT current_database()").Scan(&catalog); err != nil {
		t.Fatal(err)
	}
	r = readTable(t, db, catalog+".main.usage", ingest.Spec{Kind: ingest.KindUsage}, ingest.Window{From: t0.Add(99 * time.Minute)})
	if r.stats.Emitted != 1 || r.usage[0].InvocationID != "inv-99" {
		t.Fatalf("catalog.schema.name: %+v", r.stats)
	}
}

// TestPushdownExact checks the SQL bounds on each kind of time column: rows on
// either side of a bound by one microsecond (or millisecond) land on the
// right side, and SQL reads no row it need not. (A non-UTC session time zone
// cannot be tested here: it needs the icu extension, which this build cannot
// load; the bounds are bound with an explicit +00 zone for that case.)
func TestPushdownExact(t *testing.T) {
	from, to := t0.Add(500*time.Microsecond+1), t0.Add(time.Hour) // From not on a microsecond
	for _, tc := range []struct {
		name, typ string
		unit      time.Duration
		lit       func(time.Time) string
		pushed    bool
	}{
		{"timestamp", "TIMESTAMP", time.Microsecond, tsLit, true},
		{"timestamptz", "TIMESTAMPTZ", time.Microsecond, tstzLit, true},
		{"timestamp_ns", "TIMESTAMP_NS", time.Microsecond, tsLit, true},
		{"timestamp_ms", "TIMESTAMP_MS", time.Millisecond, func(t time.Time) string { return "TIMESTAMP '" + t.Format("2006-01-02 15:04:05.999") + "'" }, true},
		{"epoch ms", "BIGINT", time.Millisecond, func(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }, true},
		{"text", "VARCHAR", time.Microsecond, func(t time.Time) string { return "'" + t.Format(time.RFC3339Nano) + "'" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, "")
			exec(t, db, "CREATE TABLE traces (trace_id VARCHAR, request_time "+tc.typ+")")
			var vals []string
			// Candidates around each bound; those the column can hold exactly decide the expectation.
			lo := from.Truncate(tc.unit)
			hi := to
			times := []time.Time{lo.Add(-tc.unit), lo, lo.Add(tc.unit), hi.Add(-tc.unit), hi, hi.Add(tc.unit)}
			want := 0
			for i, ts := range times {
				vals = append(vals, fmt.Sprintf("('tr-%d', %s)", i, tc.lit(ts)))
				if !ts.Before(from) && ts.Before(to) {
					want++
				}
			}
			exec(t, db, "INSERT INTO traces VALUES "+strings.Join(vals, ", "))
			r := readTable(t, db, "traces", ingest.Spec{Kind: ingest.KindTrace}, ingest.Window{From: from, To: to})
			if r.stats.Emitted != int64(want) {
				t.Fatalf("emitted %d, want %d: %+v", r.stats.Emitted, want, r.agent)
			}
			for _, a := range r.agent {
				if a.StartTime.Before(from) || !a.StartTime.Before(to) {
					t.Errorf("kept %v", a.StartTime)
				}
			}
			// SQL rounds From down to the column's unit, so the one row at
			// that rounded bound is read and then dropped; nothing else is.
			if tc.pushed && r.stats.OutsideWindow > 1 {
				t.Errorf("SQL let %d rows outside the window through", r.stats.OutsideWindow)
			}
			if !tc.pushed && r.stats.Rows != int64(len(times)) {
				t.Errorf("text column: read %d rows", r.stats.Rows)
			}
		})
	}
}

func tsLit(t time.Time) string {
	return "TIMESTAMP_NS '" + t.Format("2006-01-02 15:04:05.999999999") + "'"
}
func tstzLit(t time.Time) string {
	return "TIMESTAMPTZ '" + t.Format("2006-01-02 15:04:05.999999") + "+00'"
}

func TestReadAgents(t *testing.T) {
	db := openDB(t, "")
	exec(t, db,
		`CREATE TABLE agent_payload (databricks_request_id VARCHAR, client_request_id VARCHAR, request_date DATE,
			"Request_Time" TIMESTAMP, status_code INTEGER, sampling_fraction DOUBLE, execution_duration_ms BIGINT,
			request VARCHAR, response VARCHAR, logging_error_codes VARCHAR[], served_entity_id VARCHAR, requester VARCHAR)`,
		`INSERT INTO agent_payload VALUES
			('dbr-1', 'c-1', DATE '2026-03-01', TIMESTAMP '2026-03-01 10:00:00', 200, 1.0, 4200, repeat('x', 100000), '{}', [], 'se', 'ann@example.com'),
			('dbr-2', NULL, DATE '2026-03-01', TIMESTAMP '2026-03-01 10:01:00', 500, 1.0, NULL, '{}', '{}', ['MAX_RESPONSE_SIZE_EXCEEDED'], 'se', 'bob@example.com'),
			(NULL, NULL, DATE '2026-03-01', TIMESTAMP '2026-03-01 10:02:00', 200, 1.0, 1, '{}', '{}', [], 'se', 'eve@example.com')`,
		`CREATE TABLE traces (trace_id VARCHAR, client_request_id VARCHAR, request_time BIGINT, execution_duration_ms BIGINT,
			state VARCHAR, trace_metadata MAP(VARCHAR, VARCHAR), tags MAP(VARCHAR, VARCHAR), assessments VARCHAR[])`,
		fmt.Sprintf(`INSERT INTO traces VALUES
			('tr-1', 'dbr-1', %d, 4200, 'OK', MAP {'mlflow.trace.user': 'ann@example.com', 'mlflow.databricks.modelServingEndpointName': 'agent-a'}, MAP {'mlflow.user': 'dev'}, []),
			('tr-2', 'dbr-2', %d, 10, 'ERROR', NULL, NULL, NULL)`, t0.UnixMilli(), t0.Add(time.Minute).UnixMilli()),
	)
	r := readTable(t, db, "agent_payload", ingest.Spec{Kind: ingest.KindPayload, AgentEndpoint: "agent-a", ServicePrincipal: "sp-a"}, ingest.Window{From: t0, To: t0.Add(time.Hour)})
	if r.stats.Emitted != 2 || r.stats.Dead != 1 || r.dead[0].Field != "databricks_request_id" || r.dead[0].Location != "row 3" {
		t.Fatalf("payload: %+v %+v", r.stats, r.dead)
	}
	want := schemas.AgentRequest{AgentRequestID: "dbr-1", ClientRequestID: "c-1", EndUser: "ann@example.com", AgentEndpoint: "agent-a",
		ServicePrincipal: "sp-a", StartTime: t0, DurationMS: 4200, Status: "OK", Source: schemas.SourcePayload}
	if r.agent[0] != want || r.agent[1].Status != "ERROR" {
		t.Fatalf("payload rows %+v", r.agent)
	}
	if strings.Contains(r.dead[0].Record, "request") && strings.Contains(r.dead[0].Record, `"request":`) {
		t.Fatalf("payload body was selected: %s", r.dead[0].Record)
	}
	r = readTable(t, db, "traces", ingest.Spec{Kind: ingest.KindTrace, ServicePrincipal: "sp-a"}, ingest.Window{From: t0, To: t0.Add(time.Hour)})
	if r.stats.Emitted != 2 || r.agent[0].EndUser != "ann@example.com" || r.agent[0].AgentEndpoint != "agent-a" || !r.agent[1].StartTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("traces %+v %+v", r.stats, r.agent)
	}
}

func TestTableNames(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"usage", `"usage"`},
		{"main.usage", `"main"."usage"`},
		{"cat.main.usage_2026", `"cat"."main"."usage_2026"`},
		{"_x", `"_x"`},
	} {
		if got, err := QuoteTable(tc.in); err != nil || got != tc.want {
			t.Errorf("QuoteTable(%q) = %s, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "a.b.c.d", "usage; DROP TABLE usage", `us"age`, "1usage", "a..b", "a.", "système", "a-b"} {
		if _, err := QuoteTable(bad); err == nil {
			t.Errorf("QuoteTable(%q) accepted", bad)
		}
	}
	db := openDB(t, "")
	var r result
	if _, err := Read(context.Background(), db, "usage; DROP TABLE x", ingest.Spec{Kind: ingest.KindUsage}, ingest.Window{}, r.emit()); err == nil {
		t.Fatal("bad name accepted")
	}
	_, err := Read(context.Background(), db, "no_such_table", ingest.Spec{Kind: ingest.KindUsage}, ingest.Window{}, r.emit())
	if err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("missing table: %v", err)
	}
}

func TestBuildQuery(t *testing.T) {
	cols := []column{{"databricks_request_id", "VARCHAR"}, {"request", "VARCHAR"}, {"Request_Time", "TIMESTAMP"}, {"requester", "VARCHAR"}}
	q, args := buildQuery(`"p"`, ingest.KindPayload, cols, ingest.Window{From: t0.Add(1500 * time.Nanosecond), To: t0.Add(time.Hour + 1)})
	wantQ := `SELECT "databricks_request_id" AS "databricks_request_id", "Request_Time" AS "request_time", "requester" AS "requester" FROM "p"` +
		` WHERE "Request_Time" >= CAST(? AS TIMESTAMP) AND "Request_Time" < CAST(? AS TIMESTAMP)`
	wantArgs := []any{"2026-03-01 10:00:00.000001", "2026-03-01 11:00:00.000001"}
	if q != wantQ || !reflect.DeepEqual(args, wantArgs) {
		t.Fatalf("query:\n%s\n%v", q, args)
	}
	q, args = buildQuery(`"x"`, ingest.KindUsage, []column{{"other", "VARCHAR"}}, ingest.Window{From: t0})
	if q != `SELECT NULL AS _obolus_no_columns FROM "x"` || args != nil {
		t.Fatalf("no columns: %s %v", q, args)
	}
}

// TestDuckDBParquet checks interop with Parquet that DuckDB writes (TIMESTAMP,
// TIMESTAMPTZ, MAP and STRUCT columns): the file reader and the table reader
// produce the same records and the same dead letters.
func TestDuckDBParquet(t *testing.T) {
	db := openDB(t, "")
	fillUsage(t, db, 300)
	dir := t.TempDir()
	naive := filepath.Join(dir, "usage.parquet")
	tz := filepath.Join(dir, "usage_tz.parquet")
	exec(t, db,
		fmt.Sprintf(`COPY (SELECT * FROM usage) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 100)`, naive),
		fmt.Sprintf(`COPY (SELECT * REPLACE (event_time::TIMESTAMPTZ AS event_time) FROM usage) TO '%s' (FORMAT parquet)`, tz))
	w := ingest.Window{From: t0.Add(10 * time.Minute), To: t0.Add(4 * time.Hour)}
	want := readTable(t, db, "usage", ingest.Spec{Kind: ingest.KindUsage}, w)
	for _, path := range []string{naive, tz} {
		var got result
		st, err := ingest.ReadFiles(context.Background(), ingest.Spec{Kind: ingest.KindUsage, Path: path}, w, got.emit())
		if err != nil {
			t.Fatal(err)
		}
		if st.Emitted != want.stats.Emitted || st.Dead != want.stats.Dead || st.Rows != 304 {
			t.Fatalf("%s: stats %+v, table %+v", path, st, want.stats)
		}
		if !reflect.DeepEqual(got.usage, want.usage) {
			for i := range got.usage {
				if !reflect.DeepEqual(got.usage[i], want.usage[i]) {
					t.Fatalf("%s row %d:\n got %+v\nwant %+v", path, i, got.usage[i], want.usage[i])
				}
			}
		}
		for i, d := range got.dead {
			if d.Field != want.dead[i].Field || d.Reason != want.dead[i].Reason || d.Source != path {
				t.Fatalf("%s dead %d: %+v, table %+v", path, i, d, want.dead[i])
			}
		}
	}
}

// BenchmarkRead measures the table reader on 200k usage rows.
func BenchmarkRead(b *testing.B) {
	db := openDB(b, "")
	fillUsage(b, db, 200_000)
	emit := ingest.Emit{
		Usage: func([]schemas.UsageEvent) error { return nil },
		Dead:  func(schemas.DeadLetter) error { return nil },
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := Read(context.Background(), db, "usage", ingest.Spec{Kind: ingest.KindUsage}, ingest.Window{}, emit)
		if err != nil {
			b.Fatal(err)
		}
		if st.Emitted != 200_001 {
			b.Fatalf("stats %+v", st)
		}
	}
	b.ReportMetric(float64(b.N)*200_004/b.Elapsed().Seconds(), "rows/s")
}
