package duckdb

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/schemas"
)

const benchRows = 1_000_000

var benchMethods = []string{schemas.MethodTraceID, schemas.MethodTagUser, schemas.MethodRequestID,
	schemas.MethodTimeWindow, schemas.MethodTimeWindowNearest, schemas.MethodUnattributed}

// benchData is one day of rows: 90% single-row invocations, 10% of rows in
// two-way splits, spread over 20 endpoints and 10,000 users.
func benchData(n int) []schemas.Attribution {
	rows := make([]schemas.Attribution, 0, n)
	step := 24 * time.Hour / time.Duration(n)
	for i := 0; len(rows) < n; i++ {
		at := day1.Add(time.Duration(len(rows)) * step)
		r := att(fmt.Sprintf("inv-%08d", i), fmt.Sprintf("user-%05d", i%10000), at,
			endpoint(fmt.Sprintf("ep-%02d", i%20)), method(benchMethods[i%len(benchMethods)]))
		r.RequestID = fmt.Sprintf("req-%08d", i)
		if i%20 == 0 && len(rows)+2 <= n {
			a, b := r, r
			split(0.5, 60, 30)(&a)
			split(0.5, 40, 20)(&b)
			b.EndUser = fmt.Sprintf("user-%05d", (i+1)%10000)
			rows = append(rows, a, b)
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

// BenchmarkReplaceAttributions replaces a day of 1M rows, into an empty table
// and over the same day already stored (a rerun), and reports how many times
// the bare Appender's time into an empty table of the same shape it takes.
func BenchmarkReplaceAttributions(b *testing.B) {
	rows := benchData(benchRows)
	from, to := day1, day1.Add(24*time.Hour)
	for _, rerun := range []bool{false, true} {
		name := "into_empty"
		if rerun {
			name = "rerun"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := openStore(b)
			var replace, bare time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if rerun && i == 0 {
					mustReplace(b, s, from, to, rows)
				}
				if !rerun {
					mustReplace(b, s, from, to, nil)
				}
				bare += bareAppend(b, s, rows)
				b.StartTimer()

				t0 := time.Now()
				mustReplace(b, s, from, to, rows)
				replace += time.Since(t0)
			}
			b.ReportMetric(float64(b.N*len(rows))/replace.Seconds(), "rows/s")
			b.ReportMetric(float64(b.N*len(rows))/bare.Seconds(), "bare_rows/s")
			b.ReportMetric(replace.Seconds()/bare.Seconds(), "x_of_bare_appender")
		})
	}
}

// BenchmarkRefreshCoverage recomputes the coverage of a day of 1M rows.
func BenchmarkRefreshCoverage(b *testing.B) {
	ctx := context.Background()
	s, _ := openStore(b)
	from, to := day1, day1.Add(24*time.Hour)
	mustReplace(b, s, from, to, benchData(benchRows))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.RefreshCoverage(ctx, from, to); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

func mustReplace(b *testing.B, s *Store, from, to time.Time, rows []schemas.Attribution) {
	b.Helper()
	st, err := s.ReplaceAttributions(context.Background(), from, to, rows)
	if err != nil {
		b.Fatal(err)
	}
	if st.Inserted != int64(len(rows)) {
		b.Fatalf("inserted %d of %d rows", st.Inserted, len(rows))
	}
}

// bareAppend times the ceiling: the Appender alone into a fresh, empty table
// created by the attribution DDL under another name.
func bareAppend(b *testing.B, s *Store, rows []schemas.Attribution) time.Duration {
	b.Helper()
	ctx := context.Background()
	stmts, err := schemas.DDL("duckdb")
	if err != nil {
		b.Fatal(err)
	}
	create := strings.Replace(stmts[0].Parts()[0], "CREATE TABLE IF NOT EXISTS attribution", "CREATE OR REPLACE TABLE bare_attribution", 1)
	if _, err := s.DB().ExecContext(ctx, create); err != nil {
		b.Fatal(err)
	}
	defer s.DB().ExecContext(ctx, "DROP TABLE bare_attribution")
	dates := make([]time.Time, len(rows))
	for i := range rows {
		dates[i] = rows[i].EventTime.UTC().Truncate(24 * time.Hour)
	}
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var took time.Duration
	err = conn.Raw(func(dc any) error {
		t0 := time.Now()
		ap, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "bare_attribution")
		if err != nil {
			return err
		}
		vals := make([]any, 0, schemas.NumAttributionColumns)
		args := make([]driver.Value, schemas.NumAttributionColumns)
		for i := range rows {
			vals = rows[i].AppendValues(vals[:0], dates[i])
			for k, v := range vals {
				args[k] = v
			}
			if err := ap.AppendRow(args...); err != nil {
				return err
			}
		}
		err = ap.Close()
		took = time.Since(t0)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return took
}
