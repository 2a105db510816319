package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	dbsql "github.com/databricks/databricks-sql-go"
)

const benchRows = 1_000_000

// benchTable has the shape of a usage row: an id, a requester, a token
// count, a cost and an event time.
const benchTable = `CREATE TABLE bench AS SELECT
	range AS id,
	'user-' || (range % 1000) || '@example.com' AS requester,
	(range % 5000)::INTEGER AS tokens,
	(range * 0.25)::DOUBLE AS cost,
	TIMESTAMP '2025-01-01 00:00:00' + to_seconds(range) AS event_time
	FROM range(1000000)`

const benchQuery = `SELECT id, requester, tokens, cost, event_time FROM bench`

// scanAll reads every row of benchQuery into typed Go values.
func scanAll(ctx context.Context, db *sql.DB) (int, error) {
	rows, err := db.QueryContext(ctx, benchQuery)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		n         int
		id        int64
		requester string
		tokens    int32
		cost      float64
		at        time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&id, &requester, &tokens, &cost, &at); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// BenchmarkSelectThroughput fetches 1M rows through the real driver and
// compares the rate with reading the same rows from DuckDB in-process.
func BenchmarkSelectThroughput(b *testing.B) {
	s := startServer(b, Config{})
	ctx := context.Background()
	if _, err := s.DB().ExecContext(ctx, benchTable); err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name string
		opts []dbsql.ConnOption
	}{
		{"arrow", nil},
		{"column", []dbsql.ConnOption{dbsql.WithSessionParams(map[string]string{resultFormatConf: "column"})}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			db := openDB(b, s, m.opts...)
			if err := db.PingContext(ctx); err != nil {
				b.Fatal(err)
			}
			// The in-process baseline runs between the timed scans, untimed, so
			// that both see the same machine load.
			var direct time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				start := time.Now()
				if n, err := scanAll(ctx, s.DB()); err != nil || n != benchRows {
					b.Fatalf("direct scan: %d rows, %v", n, err)
				}
				direct += time.Since(start)
				b.StartTimer()
				n, err := scanAll(ctx, db)
				if err != nil || n != benchRows {
					b.Fatalf("driver scan: %d rows, %v", n, err)
				}
			}
			rate := float64(b.N) * benchRows / b.Elapsed().Seconds()
			directRate := float64(b.N) * benchRows / direct.Seconds()
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(directRate, "direct_rows/s")
			b.ReportMetric(rate/directRate, "x_of_direct_duckdb")
		})
	}
}

// BenchmarkEncodePage measures the server side alone: turning one 100k-row
// page into a Thrift row set.
func BenchmarkEncodePage(b *testing.B) {
	s, err := New(Config{Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DB().QueryContext(context.Background(), `SELECT range AS id, 'user-' || range AS requester,
		range * 0.25 AS cost, TIMESTAMP '2025-01-01 00:00:00' + to_seconds(range) AS event_time,
		(range * 1.5)::DECIMAL(18,2) AS amount FROM range(100000)`)
	if err != nil {
		b.Fatal(err)
	}
	types, _ := rows.ColumnTypes()
	var cols []column
	for _, ct := range types {
		c, err := newColumn(ct.Name(), ct.DatabaseTypeName())
		if err != nil {
			b.Fatal(err)
		}
		cols = append(cols, c)
	}
	pg := &page{cols: make([][]any, len(cols))}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		for i, v := range vals {
			pg.cols[i] = append(pg.cols[i], v)
		}
		pg.n++
	}
	rows.Close()
	for _, useArrow := range []bool{true, false} {
		b.Run(fmt.Sprintf("arrow=%v", useArrow), func(b *testing.B) {
			enc, err := newEncoding(cols, useArrow, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := enc.rowSet(pg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*pg.n)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func BenchmarkRewriteSQL(b *testing.B) {
	q := "SELECT `requester`, sum(input_tokens) FROM system.ai_gateway.usage WHERE event_time >= :from AND event_time < :to " +
		"AND request_tags['trace_id'] = :trace -- comment with :from\nGROUP BY `requester` HAVING max(event_time) < current_timestamp()"
	in := rewriteInput{named: map[string]placeholder{"from": {}, "to": {}, "trace": {}}, catalogs: reservedCatalogs}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := rewriteSQL(q, in); err != nil {
			b.Fatal(err)
		}
	}
}
