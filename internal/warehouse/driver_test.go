package warehouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	dbsql "github.com/databricks/databricks-sql-go"
	"github.com/databricks/databricks-sql-go/driverctx"
	dbsqlerr "github.com/databricks/databricks-sql-go/errors"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

// resultModes are the ways the server can answer; every round trip runs in each.
var resultModes = []struct {
	name string
	cfg  Config
	opts []dbsql.ConnOption
}{
	{name: "arrow"},
	{name: "arrow_native_decimal", opts: []dbsql.ConnOption{dbsql.WithArrowNativeDecimal(true)}},
	{name: "column", cfg: Config{ColumnResults: true}},
}

func TestConnectWithToken(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	if err := db.PingContext(testCtx(t)); err != nil {
		t.Fatalf("ping with the right token: %v", err)
	}
	if n := s.Calls("OpenSession"); n != 1 {
		t.Errorf("OpenSession calls = %d, want 1", n)
	}
}

func TestWrongTokenIsAuthError(t *testing.T) {
	s := startServer(t, Config{})
	for _, tok := range []string{"wrong-token", ""} {
		t.Run(fmt.Sprintf("token=%q", tok), func(t *testing.T) {
			c, err := dbsql.NewConnector(baseOptions(t, s, tok)...)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			err = db.PingContext(testCtx(t))
			if err == nil {
				t.Fatal("ping with a bad token succeeded")
			}
			var reqErr dbsqlerr.DBRequestError
			if !errors.As(err, &reqErr) {
				t.Errorf("error %T is not a DBRequestError: %v", err, err)
			}
			for _, want := range []string{"401", "invalid or missing bearer token"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if n := s.Calls("ExecuteStatement"); n != 0 {
				t.Errorf("ExecuteStatement ran %d times without a valid token", n)
			}
		})
	}
}

// typesTable is created and filled through the driver in every result mode.
const typesTable = `CREATE TABLE types (
	id INT, s STRING, i INT, b BIGINT, si SMALLINT, ti TINYINT, d DOUBLE, f FLOAT, ok BOOLEAN,
	ts TIMESTAMP, dt DATE, dec DECIMAL(10,2), bin BINARY,
	tags MAP(STRING, STRING), meta STRUCT(creator STRING, n INT), list INT[])`

func TestTypesRoundTrip(t *testing.T) {
	ts := time.Date(2024, 3, 5, 6, 7, 8, 123456000, time.UTC)
	dt := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	want := [][]any{
		{int32(1), "héllo 'quoted'", int32(-7), int64(9007199254740993), int16(-300), int8(12), 3.25, float32(1.5), true,
			ts, dt, "12.30", []byte{0, 1, 2},
			`{"z":"1","a":"2"}`, `{"creator":"svc","n":3}`, "[1,null,3]"},
		{int32(2), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	}
	for _, mode := range resultModes {
		t.Run(mode.name, func(t *testing.T) {
			s := startServer(t, mode.cfg)
			db := openDB(t, s, mode.opts...)
			ctx := testCtx(t)
			mustExec(t, db, typesTable)
			mustExec(t, db, `INSERT INTO types VALUES (1, ?, ?, ?, -300, 12, ?, 1.5, ?, ?, ?, ?, '\x00\x01\x02'::BLOB,
				MAP {'z': '1', 'a': '2'}, {'creator': 'svc', 'n': 3}, [1, NULL, 3])`,
				"héllo 'quoted'", int32(-7), int64(9007199254740993), 3.25, true, ts,
				dbsql.Parameter{Type: dbsql.SqlDate, Value: "2024-03-05"},
				dbsql.Parameter{Type: dbsql.SqlDecimal, Value: "12.3"})
			mustExec(t, db, `INSERT INTO types (id) VALUES (2)`)

			rows, err := db.QueryContext(ctx, `SELECT * FROM types ORDER BY id`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			var got [][]any
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				got = append(got, vals)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
			for r := range want {
				for c := range want[r] {
					g, w := got[r][c], want[r][c]
					if gt, isTime := g.(time.Time); isTime {
						g = gt.UTC()
					}
					if !reflect.DeepEqual(g, w) {
						t.Errorf("row %d column %s: got %#v (%T), want %#v (%T)", r, cols[c], g, g, w, w)
					}
				}
			}
			types, _ := rows.ColumnTypes()
			wantTypes := []string{"INT", "STRING", "INT", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "BOOLEAN",
				"TIMESTAMP", "DATE", "DECIMAL", "BINARY", "MAP", "STRUCT", "ARRAY"}
			for i, ct := range types {
				if ct.DatabaseTypeName() != wantTypes[i] {
					t.Errorf("column %s type = %s, want %s", cols[i], ct.DatabaseTypeName(), wantTypes[i])
				}
			}
		})
	}
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) sql.Result {
	t.Helper()
	res, err := db.ExecContext(testCtx(t), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

func TestPaging(t *testing.T) {
	const n = 10_000
	for _, mode := range resultModes {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mode.cfg
			cfg.PageSize = 1000
			s := startServer(t, cfg)
			db := openDB(t, s, mode.opts...)
			rows, err := db.QueryContext(testCtx(t), fmt.Sprintf(`SELECT i, 'row ' || i AS label FROM range(%d) t(i) ORDER BY i`, n))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			next := int64(0)
			for rows.Next() {
				var i int64
				var label string
				if err := rows.Scan(&i, &label); err != nil {
					t.Fatal(err)
				}
				if i != next || label != fmt.Sprintf("row %d", next) {
					t.Fatalf("row %d: got (%d, %q)", next, i, label)
				}
				next++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if next != n {
				t.Fatalf("read %d rows, want %d", next, n)
			}
			// The first page travels with ExecuteStatement, the other nine by FetchResults.
			if got := s.Calls("FetchResults"); got != n/1000-1 {
				t.Errorf("FetchResults calls = %d, want %d", got, n/1000-1)
			}
		})
	}
}

func TestParameters(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	ctx := testCtx(t)
	mustExec(t, db, `CREATE TABLE notes (id BIGINT, body STRING, noted_at TIMESTAMP, score DOUBLE, flag BOOLEAN)`)
	evil := `'; DROP TABLE notes; --`
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	mustExec(t, db, `INSERT INTO notes VALUES (:id, :body, :at, :score, :flag)`,
		sql.Named("id", int64(1)), sql.Named("body", evil), sql.Named("at", at), sql.Named("score", 0.5), sql.Named("flag", true))
	mustExec(t, db, `INSERT INTO notes VALUES (?, ?, ?, ?, ?)`, int64(2), `it's a ? and a :body`, at, nil, false)

	cases := []struct {
		name string
		q    string
		args []any
		want string
	}{
		{"named", `SELECT body FROM notes WHERE id = :id AND body = :body`, []any{sql.Named("id", int64(1)), sql.Named("body", evil)}, evil},
		{"positional", `SELECT body FROM notes WHERE id = ? AND score IS NULL`, []any{int64(2)}, `it's a ? and a :body`},
		{"markers inside literals are text", `SELECT ':id ? ' || body FROM notes WHERE id = :id`, []any{sql.Named("id", int64(2))}, `:id ? it's a ? and a :body`},
		{"cast after marker", `SELECT CAST(:n::INT + 1 AS STRING)`, []any{sql.Named("n", "41")}, "42"},
		{"typed decimal", `SELECT CAST(:d * 2 AS STRING)`, []any{dbsql.Parameter{Name: "d", Type: dbsql.SqlDecimal, Value: "1.25"}}, "2.50"},
		{"typed date", `SELECT CAST(:d + INTERVAL 1 DAY AS STRING)`, []any{dbsql.Parameter{Name: "d", Type: dbsql.SqlDate, Value: "2024-02-28"}}, "2024-02-29 00:00:00"},
		{"null", `SELECT coalesce(:v, 'was null')`, []any{sql.Named("v", nil)}, "was null"},
		{"timestamp", `SELECT CAST(max(noted_at) = :at AS STRING) FROM notes`, []any{sql.Named("at", at)}, "true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if err := db.QueryRowContext(ctx, tc.q, tc.args...).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("notes table: count=%d err=%v, want 2 rows and the table intact", n, err)
	}
}

func TestRowsAffected(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	mustExec(t, db, `CREATE TABLE usage (id STRING, tokens BIGINT)`)
	cases := []struct {
		q    string
		want int64
	}{
		{`INSERT INTO usage VALUES ('a', 1), ('b', 2), ('c', 3)`, 3},
		{`UPDATE usage SET tokens = tokens * 10 WHERE id <> 'a'`, 2},
		{`MERGE INTO usage AS t USING (SELECT * FROM (VALUES ('b', 5), ('d', 7)) v(id, tokens)) AS s ON t.id = s.id
			WHEN MATCHED THEN UPDATE SET tokens = s.tokens
			WHEN NOT MATCHED THEN INSERT (id, tokens) VALUES (s.id, s.tokens)`, 2},
		{`DELETE FROM usage WHERE tokens < 5`, 1},
	}
	for _, tc := range cases {
		res := mustExec(t, db, tc.q)
		got, err := res.RowsAffected()
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: RowsAffected = %d, want %d", strings.Fields(tc.q)[0], got, tc.want)
		}
	}
	var sum int64
	if err := db.QueryRowContext(testCtx(t), `SELECT sum(tokens) FROM usage`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 5+7+30 {
		t.Errorf("sum(tokens) = %d, want 42", sum)
	}
}

func TestSQLErrorNamesTheColumn(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	mustExec(t, db, `CREATE TABLE t (a INT)`)
	_, err := db.QueryContext(testCtx(t), `SELECT no_such_column FROM t`)
	if err == nil {
		t.Fatal("query of a missing column succeeded")
	}
	var execErr dbsqlerr.DBExecutionError
	if !errors.As(err, &execErr) {
		t.Fatalf("error %T is not a DBExecutionError: %v", err, err)
	}
	if !strings.Contains(err.Error(), "no_such_column") {
		t.Errorf("error %q does not name the column", err)
	}
	if execErr.SqlState() != "42703" {
		t.Errorf("SqlState = %q, want 42703", execErr.SqlState())
	}
	// The session survives the error.
	var one int
	if err := db.QueryRowContext(testCtx(t), `SELECT 1`).Scan(&one); err != nil {
		t.Fatalf("query after an error: %v", err)
	}
}

func TestRetriesOnTransientStatus(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		status     int
		retryAfter int
		n          int
		minElapsed time.Duration
	}{
		{"503 on any call", "", 503, 0, 2, 0},
		{"503 on ExecuteStatement", "ExecuteStatement", 503, -1, 2, 0},
		{"429 with Retry-After", "FetchResults", 429, 1, 1, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Faults{}
			s := startServer(t, Config{Faults: f, PageSize: 10})
			db := openDB(t, s, dbsql.WithRetries(3, 10*time.Millisecond, 200*time.Millisecond))
			if err := db.PingContext(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			f.FailNext(tc.method, tc.n, tc.status, tc.retryAfter)
			start := time.Now()
			var n int
			if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM (SELECT * FROM range(25) LIMIT 25)`).Scan(&n); err != nil {
				t.Fatalf("query with %d injected %d answers: %v", tc.n, tc.status, err)
			}
			rows, err := db.QueryContext(testCtx(t), `SELECT * FROM range(25)`)
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for rows.Next() {
				count++
			}
			if err := rows.Err(); err != nil || count != 25 {
				t.Fatalf("paged read after faults: %d rows, err %v", count, err)
			}
			rows.Close()
			if got := f.Injected(); got != tc.n {
				t.Errorf("injected %d faults, want %d", got, tc.n)
			}
			if el := time.Since(start); el < tc.minElapsed {
				t.Errorf("recovered after %v; Retry-After asked for at least %v", el, tc.minElapsed)
			}
		})
	}
}

func TestDroppedConnection(t *testing.T) {
	f := &Faults{}
	s := startServer(t, Config{Faults: f, PageSize: 100})
	db := openDB(t, s, dbsql.WithRetries(3, 10*time.Millisecond, 200*time.Millisecond))
	ctx := testCtx(t)

	t.Run("FetchResults is retried", func(t *testing.T) {
		f.DropNext("FetchResults", 1)
		var n, sum int64
		rows, err := db.QueryContext(ctx, `SELECT i FROM range(1000) t(i) ORDER BY i`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var i int64
			if err := rows.Scan(&i); err != nil {
				t.Fatal(err)
			}
			if i != n {
				t.Fatalf("row %d has value %d: a page was lost or repeated", n, i)
			}
			n++
			sum += i
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != 1000 {
			t.Fatalf("read %d rows, want 1000", n)
		}
	})
	t.Run("ExecuteStatement is not retried", func(t *testing.T) {
		before := f.Injected()
		f.DropNext("ExecuteStatement", 1)
		_, err := db.ExecContext(ctx, `CREATE TABLE dropped (a INT)`)
		if err == nil {
			t.Fatal("statement on a dropped connection succeeded")
		}
		if f.Injected() != before+1 {
			t.Fatalf("fault not injected")
		}
		// The statement never reached DuckDB and the pool recovers.
		mustExec(t, db, `CREATE TABLE dropped (a INT)`)
	})
}

func TestCancelSlowQuery(t *testing.T) {
	const slow = `SELECT sum(i % 7) FROM range(1000000000000) t(i)`
	cases := []struct {
		name string
		wait time.Duration
	}{
		{"client gives up during ExecuteStatement", 0},
		{"CancelOperation while polling", 20 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Config{DirectResultsWait: tc.wait})
			db := openDB(t, s)
			db.SetMaxOpenConns(1)
			ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := db.QueryContext(ctx, slow)
			if err == nil {
				t.Fatal("slow query finished before its deadline")
			}
			if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
				t.Errorf("error %v is not a deadline error", err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("cancellation took %v", el)
			}
			// DuckDB must have stopped: the same single connection answers at once.
			start = time.Now()
			var one int
			if err := db.QueryRowContext(testCtx(t), `SELECT 1`).Scan(&one); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("next query waited %v: the slow query kept running", el)
			}
			if tc.wait > 0 && s.Calls("CancelOperation") == 0 {
				t.Error("driver never sent CancelOperation")
			}
		})
	}
}

func TestServerSideQueryTimeout(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s, dbsql.WithTimeout(time.Second))
	start := time.Now()
	_, err := db.QueryContext(testCtx(t), `SELECT sum(i % 7) FROM range(1000000000000) t(i)`)
	if err == nil || !strings.Contains(err.Error(), "TIMEDOUT") {
		t.Fatalf("got %v, want a TIMEDOUT_STATE error", err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("timed out after %v, want about 1s", el)
	}
}

func TestAsyncPolling(t *testing.T) {
	cases := []struct {
		name  string
		wait  time.Duration
		delay time.Duration
	}{
		{"never wait", -1, 0},
		{"query outlasts the wait", 20 * time.Millisecond, 150 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Faults{}
			f.DelayExecute(tc.delay)
			s := startServer(t, Config{DirectResultsWait: tc.wait, Faults: f, PageSize: 300})
			db := openDB(t, s)
			start := time.Now()
			rows, err := db.QueryContext(testCtx(t), `SELECT * FROM range(1000)`)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if n != 1000 {
				t.Fatalf("read %d rows, want 1000", n)
			}
			if time.Since(start) < tc.delay {
				t.Errorf("query returned before the injected %v delay", tc.delay)
			}
			if s.Calls("GetOperationStatus") == 0 {
				t.Error("driver never polled GetOperationStatus")
			}
			if s.Calls("GetResultSetMetadata") == 0 && s.Calls("FetchResults") == 0 {
				t.Error("results were never fetched after polling")
			}
		})
	}
}

func TestSessionTimezone(t *testing.T) {
	s := startServer(t, Config{})
	want := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, format := range []string{"arrow", "column"} {
		t.Run(format, func(t *testing.T) {
			db, err := sql.Open("databricks", s.DSN("wh")+"&timezone=America/New_York&"+resultFormatConf+"="+format)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var got time.Time
			if err := db.QueryRowContext(testCtx(t), `SELECT TIMESTAMPTZ '2024-01-01 12:00:00+00'`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) || got.Location().String() != "America/New_York" {
				t.Errorf("got %v, want the instant %v shown in America/New_York", got, want)
			}
		})
	}
}

func writeUsageFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	lines := []string{
		`{"request_id":"r1","event_time":"2025-06-01T10:00:00Z","requester":"sp-agent","input_tokens":10,"output_tokens":5,"request_tags":{"trace_id":"t-1"}}`,
		`{"request_id":"r2","event_time":"2025-06-01T10:01:00Z","requester":"sp-agent","input_tokens":20,"output_tokens":7,"request_tags":{"trace_id":"t-2"}}`,
		`{"request_id":"r3","event_time":"2025-06-01T10:02:00Z","requester":"alice@example.com","input_tokens":1,"output_tokens":1,"request_tags":{}}`,
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadTableAndThreePartNames(t *testing.T) {
	s := startServer(t, Config{})
	if err := s.LoadTable(testCtx(t), "system.ai_gateway.usage", writeUsageFixture(t)); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, s)
	var n, tokens int64
	var tags string
	err := db.QueryRowContext(testCtx(t), `SELECT count(*), sum(input_tokens + output_tokens), max(to_json(request_tags)::STRING)
		FROM system.ai_gateway.usage WHERE requester = :who`, sql.Named("who", "sp-agent")).Scan(&n, &tokens, &tags)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || tokens != 42 || tags != `{"trace_id":"t-2"}` {
		t.Errorf("got count=%d tokens=%d tags=%s", n, tokens, tags)
	}
	var ts time.Time
	if err := db.QueryRowContext(testCtx(t), "SELECT max(`event_time`) FROM `system`.ai_gateway.`usage`").Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 6, 1, 10, 2, 0, 0, time.UTC); !ts.Equal(want) {
		t.Errorf("max(event_time) = %v, want %v", ts, want)
	}

	bad := []struct{ name, file string }{
		{"a.b.c.d", "x.jsonl"},
		{"system.ai-gateway.usage", "x.jsonl"},
		{"t", "x.txt"},
		{"t", filepath.Join(t.TempDir(), "missing.jsonl")},
	}
	for _, b := range bad {
		if err := s.LoadTable(testCtx(t), b.name, b.file); err == nil {
			t.Errorf("LoadTable(%q, %q) succeeded", b.name, b.file)
		}
	}
}

func TestInitialNamespace(t *testing.T) {
	s := startServer(t, Config{})
	if err := s.LoadTable(testCtx(t), "system.ai_gateway.usage", writeUsageFixture(t)); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, s, dbsql.WithInitialNamespace("system", "ai_gateway"))
	var n int
	if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM usage`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("count = %d, want 3", n)
	}

	bad := openDB(t, s, dbsql.WithInitialNamespace("system", "no_such_schema"))
	err := bad.PingContext(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "no_such_schema") {
		t.Errorf("unknown schema: got %v, want an error naming it", err)
	}
}

func TestSparkSQLRewrites(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	db.SetMaxOpenConns(1) // USE is per session
	mustExec(t, db, "CREATE CATALOG IF NOT EXISTS main")
	mustExec(t, db, "CREATE SCHEMA IF NOT EXISTS main.`default`")
	mustExec(t, db, "USE CATALOG main")
	mustExec(t, db, "USE SCHEMA `default`")
	mustExec(t, db, "CREATE TABLE `events` (`user id` STRING, seen_at TIMESTAMP)")
	mustExec(t, db, "INSERT INTO events VALUES ('u1', current_timestamp())")
	var user, cat, schema string
	var at time.Time
	if err := db.QueryRowContext(testCtx(t), "SELECT `user id`, seen_at, current_catalog(), current_schema() FROM main.`default`.events").Scan(&user, &at, &cat, &schema); err != nil {
		t.Fatal(err)
	}
	if user != "u1" || cat != "main_catalog" || schema != "default" || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Errorf("got user=%q at=%v catalog=%q schema=%q", user, at, cat, schema)
	}
}

func TestResultFormatSessionParameter(t *testing.T) {
	s := startServer(t, Config{})
	db, err := sql.Open("databricks", s.DSN("wh")+"&"+resultFormatConf+"=column")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var d time.Time
	if err := db.QueryRowContext(testCtx(t), `SELECT DATE '2024-02-29'`).Scan(&d); err != nil {
		t.Fatal(err)
	}
	if d.Format("2006-01-02") != "2024-02-29" {
		t.Errorf("date = %v", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.sessions {
		if !se.columns {
			t.Error("session did not switch to column results")
		}
	}
}

func TestStagingPutGetRemove(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	dir := t.TempDir()
	src := filepath.Join(dir, "usage.parquet")
	if _, err := s.DB().ExecContext(testCtx(t), `COPY (SELECT range AS i FROM range(5)) TO '`+strings.ReplaceAll(src, "'", "''")+`' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	ctx := driverctx.NewContextWithStagingInfo(testCtx(t), []string{dir})

	mustExecCtx(t, db, ctx, `PUT '`+src+`' INTO '/Volumes/main/raw/files/usage.parquet' OVERWRITE`)
	if _, err := db.ExecContext(ctx, `PUT '`+src+`' INTO '/Volumes/main/raw/files/usage.parquet'`); err == nil {
		t.Error("PUT over an existing file without OVERWRITE succeeded")
	}
	var sum int64
	if err := db.QueryRowContext(ctx, `SELECT sum(i) FROM read_parquet('/Volumes/main/raw/files/usage.parquet')`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 10 {
		t.Errorf("sum = %d, want 10", sum)
	}
	back := filepath.Join(dir, "back.parquet")
	mustExecCtx(t, db, ctx, `GET '/Volumes/main/raw/files/usage.parquet' TO '`+back+`'`)
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(back)
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("GET returned %d bytes, want the %d uploaded", len(b), len(a))
	}
	mustExecCtx(t, db, ctx, `REMOVE '/Volumes/main/raw/files/usage.parquet'`)
	if _, err := os.Stat(filepath.Join(s.volumeRoot, "main", "raw", "files", "usage.parquet")); !os.IsNotExist(err) {
		t.Errorf("file still in the volume after REMOVE: %v", err)
	}
	if _, err := db.ExecContext(ctx, `GET '/Volumes/../../etc/passwd' TO '`+back+`'`); err == nil {
		t.Error("GET outside the volume root succeeded")
	}
}

func mustExecCtx(t testing.TB, db *sql.DB, ctx context.Context, q string) {
	t.Helper()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestOperationsAreReleased(t *testing.T) {
	s := startServer(t, Config{PageSize: 10})
	db := openDB(t, s)
	for i := 0; i < 5; i++ {
		rows, err := db.QueryContext(testCtx(t), `SELECT * FROM range(100)`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		_, _ = db.QueryContext(testCtx(t), `SELECT nope`)
		mustExec(t, db, `SELECT 1`)
	}
	s.mu.Lock()
	open := len(s.ops)
	s.mu.Unlock()
	if open != 0 {
		t.Errorf("%d operations still open after the driver closed them", open)
	}
	_ = tcli.TOperationState_CLOSED_STATE
}

func TestConcurrentSessions(t *testing.T) {
	s := startServer(t, Config{PageSize: 50})
	db := openDB(t, s)
	db.SetMaxOpenConns(4)
	mustExec(t, db, `CREATE TABLE hits (worker INT, n INT)`)
	const workers, perWorker = 4, 20
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for i := 0; i < perWorker; i++ {
				if _, err := db.ExecContext(testCtx(t), `INSERT INTO hits VALUES (?, ?)`, int32(w), int32(i)); err != nil {
					errs <- err
					return
				}
				rows, err := db.QueryContext(testCtx(t), `SELECT * FROM range(120)`)
				if err != nil {
					errs <- err
					return
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				if n != 120 {
					errs <- fmt.Errorf("worker %d read %d rows", w, n)
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM hits`).Scan(&n); err != nil || n != workers*perWorker {
		t.Fatalf("count = %d, err %v", n, err)
	}
}

func TestStatementsWithoutRows(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	rows, err := db.QueryContext(testCtx(t), `CREATE TABLE empty_result (a INT)`)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	if rows.Next() || len(cols) != 0 {
		t.Errorf("DDL returned columns %v or rows", cols)
	}
	rows.Close()
	var got []int
	rows, err = db.QueryContext(testCtx(t), `SELECT a FROM empty_result`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		got = append(got, 0)
	}
	if err := rows.Err(); err != nil || len(got) != 0 {
		t.Errorf("empty table: %d rows, err %v", len(got), err)
	}
	rows.Close()
}

func TestLoadTableAsDeclaredTypes(t *testing.T) {
	s := startServer(t, Config{})
	cols := []Column{
		{"request_id", "string"},
		{"event_time", "timestamp"},
		{"requester", "string"},
		{"input_tokens", "bigint"},
		{"output_tokens", "bigint"},
		{"request_tags", "map<string,string>"},
		{"endpoint_metadata", "struct<creator:string,destinations:array<struct<name:string,traffic_percent:double>>>"},
	}
	if err := s.LoadTableAs(testCtx(t), "system.ai_gateway.usage", writeUsageFixture(t), cols); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, s)
	rows, err := db.QueryContext(testCtx(t), `SELECT request_id, request_tags['trace_id'], request_tags, endpoint_metadata
		FROM system.ai_gateway.usage ORDER BY request_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types, _ := rows.ColumnTypes()
	if len(types) != 4 || types[2].DatabaseTypeName() != "MAP" || types[3].DatabaseTypeName() != "STRUCT" {
		t.Errorf("column types %v; want MAP and STRUCT last", types)
	}
	var got []string
	for rows.Next() {
		var id string
		var trace, tags, meta sql.NullString
		if err := rows.Scan(&id, &trace, &tags, &meta); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%v", id, trace.String, tags.String, meta.Valid))
	}
	want := []string{`r1|t-1|{"trace_id":"t-1"}|false`, `r2|t-2|{"trace_id":"t-2"}|false`, `r3||{}|false`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, bad := range [][]Column{
		{{"a b", "string"}},
		{{"a", "map<string>"}},
		{{"a", "string); DROP TABLE x; --"}},
		{{"a", "decimal(99,2)"}},
	} {
		if err := s.LoadTableAs(testCtx(t), "t", writeUsageFixture(t), bad); err == nil {
			t.Errorf("LoadTableAs accepted columns %+v", bad)
		}
	}
}

func TestWideIntegersNarrowToBigint(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	var sum int64
	if err := db.QueryRowContext(testCtx(t), `SELECT sum(i) FROM range(10) t(i)`).Scan(&sum); err != nil || sum != 45 {
		t.Fatalf("sum = %d, err %v", sum, err)
	}
	_, err := db.QueryContext(testCtx(t), `SELECT 170141183460469231731687303715884105727::HUGEINT AS too_big`)
	if err == nil || !strings.Contains(err.Error(), "BIGINT range") {
		t.Errorf("got %v, want an out-of-range error", err)
	}
}
