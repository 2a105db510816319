package databricks_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/schemas"
	databrickssink "github.com/obolus/obolus/sink/databricks"
)

// BenchmarkStaging measures the two ways a pull-mode write gets its rows
// into the warehouse before the MERGE, against the local warehouse:
// batched INSERTs into stage_attribution, and one Parquet file PUT to a
// volume. OBOLUS_BENCH_STAGE_ROWS sets the rows per write (default 20000).
//
//	go test ./sink/databricks -run '^$' -bench Staging -benchtime 3x
func BenchmarkStaging(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("OBOLUS_BENCH_STAGE_ROWS")); err == nil && v > 0 {
		n = v
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]schemas.Attribution, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("inv-%08d", i), fmt.Sprintf("user-%d@example.com", i%500), day.Add(time.Duration(i)*time.Second%(24*time.Hour)), 1)
	}
	for _, mode := range []struct {
		name string
		opt  databrickssink.Options
	}{
		{"inserts", databrickssink.Options{}},
		{"volume", databrickssink.Options{StagingVolume: "/Volumes/main/obolus/staging"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			_, s := newStore(b, mode.opt)
			ctx := dbsqltest.Context(b)
			var stage, merge time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, tm, err := s.ReplaceTimed(ctx, day, day.Add(24*time.Hour), rows)
				if err != nil {
					b.Fatal(err)
				}
				stage += tm.Stage
				merge += tm.Merge
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(stage.Seconds()/float64(b.N), "stage-s/op")
			b.ReportMetric(merge.Seconds()/float64(b.N), "merge-s/op")
		})
	}
}
