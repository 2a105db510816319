package dbxrun_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/synth"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/sink/databricks"
)

// BenchmarkPullCloudFetch runs the pull job over one generated workload
// with the driver's CloudFetch on (the default; the local warehouse answers
// every read of more than 10,000 rows with links to Arrow files of 65,536
// rows that it serves) and with every result inline, page by page, in the
// order inline, CloudFetch, CloudFetch, inline so that neither mode always
// runs on a warmer process. It reports each mode's rows/s and time reading
// (driver transfer and decoding), and fails if any run's answers differ in
// any row.
//
// OBOLUS_BENCH_AGENT_REQUESTS sizes the workload: the default 110000 makes
// about 1.04M usage rows.
//
//	go test ./internal/dbxrun -run '^$' -bench PullCloudFetch -benchtime 1x -timeout 60m
func BenchmarkPullCloudFetch(b *testing.B) {
	requests := benchAgentRequests()
	e := newEnvWith(b, synth.Config{Seed: 11, AgentRequests: requests, Format: synth.FormatParquet},
		warehouse.Config{CloudFetchThreshold: 10_000}, nil)
	usageRows := e.layout.Rows["system.ai_gateway.usage"] + e.layout.Rows["system.serving.endpoint_usage"]
	if err := e.layout.LoadLate(dbsqltest.Context(b), e.wh.Server.DB()); err != nil {
		b.Fatal(err)
	}
	ctx := dbsqltest.Context(b)
	opt := batch.Options{From: synth.DefaultStart, To: synth.DefaultStart.Add(synth.DefaultDuration)}
	type result struct {
		rows      int64
		total, rd time.Duration
		files     int
	}
	res := map[string]*result{"cloudfetch": {}, "inline": {}}
	for i := 0; i < b.N; i++ {
		digests := map[string]string{}
		for k, mode := range []string{"inline", "cloudfetch", "cloudfetch", "inline"} {
			b.StopTimer()
			cfg := *e.cfg
			cfg.Databricks.CloudFetch = mode == "cloudfetch"
			db := dbsqltest.Open(b, cfg.Databricks)
			schema := fmt.Sprintf("bench_%s_%d_%d", mode, i, k)
			store, err := databricks.New(db, cfg.Databricks.Catalog, schema, databricks.Options{StagingVolume: "/Volumes/main/obolus/staging"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := store.Init(ctx); err != nil {
				b.Fatal(err)
			}
			job, err := app.PullJob(&cfg, db, store, nil)
			if err != nil {
				b.Fatal(err)
			}
			sw := timed(job)
			files := e.wh.Server.Calls(warehouse.CallDownload)
			b.StartTimer()
			start := time.Now()
			rep, err := job.Run(ctx, opt)
			if err != nil {
				b.Fatal(err)
			}
			r := res[mode]
			r.total += time.Since(start)
			r.rows += rep.UsageRows
			r.rd += sw.d["read"]
			r.files += e.wh.Server.Calls(warehouse.CallDownload) - files
			b.StopTimer()
			d := e.wh.AttributionDigest(b, schema)
			if prev, seen := digests[mode]; seen && prev != d {
				b.Errorf("two %s runs gave different answers", mode)
			}
			digests[mode] = d
			b.StartTimer()
		}
		if digests["cloudfetch"] != digests["inline"] {
			b.Errorf("answers read through CloudFetch differ from those read inline")
		}
	}
	if res["cloudfetch"].files == 0 {
		b.Error("no CloudFetch file was downloaded: the windows stayed under the threshold")
	}
	b.Logf("%d usage rows; CloudFetch files downloaded: %d", usageRows, res["cloudfetch"].files)
	for mode, r := range res {
		b.ReportMetric(float64(r.rows)/r.total.Seconds(), mode+"_rows/s")
		b.ReportMetric(r.rd.Seconds()/float64(2*b.N), mode+"_read_s")
	}
	b.ReportMetric(res["inline"].total.Seconds()/res["cloudfetch"].total.Seconds(), "cloudfetch_speedup")
}
