package dbxrun_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/sink/databricks"
)

// BenchmarkPullVsPushdown attributes one generated workload against the
// local warehouse in both modes and reports each one's rows/s, their ratio,
// and where the time went: for pull, the driver transfer (reading and
// decoding the windows), the engine and the writes (Parquet staging in the
// volume and the MERGE, then coverage); for pushdown, the summary query, the
// attribution MERGE the warehouse runs, and the rest (loading prices, coverage,
// counting). Each iteration writes into fresh schemas.
//
// OBOLUS_BENCH_AGENT_REQUESTS sizes the workload: the default 110000 makes
// about 1.04M usage rows (plain go test never runs benchmarks).
//
//	go test ./internal/dbxrun -run '^$' -bench PullVsPushdown -benchtime 1x -timeout 60m
func BenchmarkPullVsPushdown(b *testing.B) {
	requests := benchAgentRequests()
	t0 := time.Now()
	e := newEnv(b, synth.Config{Seed: 11, AgentRequests: requests, Format: synth.FormatParquet}, nil)
	b.Logf("generated and loaded %d usage rows in %s", e.layout.Rows["system.ai_gateway.usage"]+e.layout.Rows["system.serving.endpoint_usage"], time.Since(t0).Round(time.Millisecond))
	if err := e.layout.LoadLate(dbsqltest.Context(b), e.wh.Server.DB()); err != nil {
		b.Fatal(err)
	}
	ctx := dbsqltest.Context(b)
	opt := batch.Options{From: synth.DefaultStart, To: synth.DefaultStart.Add(synth.DefaultDuration)}
	var pullRows, pushRows int64
	var pullTime, pushTime time.Duration
	stages := map[string]time.Duration{}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store := func(name string) *databricks.Store {
			s, err := databricks.New(e.db, e.cfg.Databricks.Catalog, fmt.Sprintf("%s_%d", name, i), databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Init(ctx); err != nil {
				b.Fatal(err)
			}
			return s
		}
		pullStore, pushStore := store("bench_pull"), store("bench_push")
		job, err := app.PullJob(e.cfg, e.db, pullStore, nil)
		if err != nil {
			b.Fatal(err)
		}
		sw := timed(job)
		pd, err := app.PushdownJob(e.cfg, e.db, pushStore, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		start := time.Now()
		rep, err := job.Run(ctx, opt)
		if err != nil {
			b.Fatal(err)
		}
		pullTime += time.Since(start)
		pullRows += rep.UsageRows
		stages["pull_read"] += sw.d["read"]
		stages["pull_write"] += sw.d["write"]
		stages["pull_engine"] += time.Since(start) - sw.d["read"] - sw.d["write"]

		start = time.Now()
		prep, err := pd.Run(ctx, opt)
		if err != nil {
			b.Fatal(err)
		}
		pushTime += time.Since(start)
		pushRows += prep.UsageRows
		stages["push_summary"] += pd.Timings["summary"]
		stages["push_merge"] += pd.Timings["merge"]
		stages["push_other"] += time.Since(start) - pd.Timings["summary"] - pd.Timings["merge"]
		if rep.Summary() != prep.Summary() {
			b.Errorf("modes disagree:\n pull     %s\n pushdown %s", rep.Summary(), prep.Summary())
		}
	}
	pullRate := float64(pullRows) / pullTime.Seconds()
	pushRate := float64(pushRows) / pushTime.Seconds()
	b.ReportMetric(pullRate, "pull_rows/s")
	b.ReportMetric(pushRate, "pushdown_rows/s")
	b.ReportMetric(pushRate/pullRate, "pushdown/pull")
	for name, d := range stages {
		b.ReportMetric(d.Seconds()/float64(b.N), name+"_s")
	}
}
