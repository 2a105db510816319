package batch_test

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/app"
	"github.com/obolus/obolus/internal/batch"
	"github.com/obolus/obolus/internal/config"
	"github.com/obolus/obolus/internal/peakrss"
	"github.com/obolus/obolus/internal/synth"
)

//go:embed testdata/bare_join.sql
var bareJoinSQL string

// workload generates (once per directory) a Parquet workload with no legacy
// rows, so the pipeline and the hand-written join read the same inputs.
func workload(tb testing.TB, dir string, agentRequests int) string {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(dir, "obolus.yaml")); err == nil {
		return dir
	}
	cfg := synth.Config{Seed: 42, AgentRequests: agentRequests, Format: synth.FormatParquet, LegacyShare: -1, Duration: 7 * 24 * time.Hour}
	res, err := synth.Generate(context.Background(), cfg, dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("workload %s: %d usage rows, %d agent requests", dir, res.UsageRows, res.AgentRequests)
	return dir
}

// runPipeline runs obolus batch over dir into a fresh store and returns its report.
func runPipeline(tb testing.TB, dir, storePath string) *batch.Report {
	tb.Helper()
	ctx := context.Background()
	v := config.New()
	cfg, err := config.Load(v, filepath.Join(dir, "obolus.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	// The store and heap limits of obolus batch, from the config's defaults.
	cfg.Store.DuckDB = storePath
	if err := app.LimitHeap(cfg); err != nil {
		tb.Fatal(err)
	}
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	job, err := app.EmbeddedJob(cfg, store, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := job.Run(ctx, batch.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

// bareJoin runs the hand-written SQL join over dir's files in a fresh DuckDB
// file and returns its row count.
func bareJoin(tb testing.TB, dir, dbPath string) (*sql.DB, int64) {
	tb.Helper()
	cfg, err := config.Load(config.New(), filepath.Join(dir, "obolus.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var payload, traces, spmap []string
	for _, s := range cfg.Sources {
		switch s.Kind {
		case config.KindPayload:
			payload = append(payload, quote(s.Path))
		case config.KindTrace:
			traces = append(traces, quote(s.Path))
		default:
			continue
		}
		spmap = append(spmap, fmt.Sprintf("(%s, %s, %s)", quote(s.Path), quote(s.AgentEndpoint), quote(s.ServicePrincipal)))
	}
	usage, err := filepath.Glob(filepath.Join(dir, "usage", "ai_gateway_usage-*.parquet"))
	if err != nil || len(usage) == 0 {
		tb.Fatalf("no usage parquet in %s", dir)
	}
	for i := range usage {
		usage[i] = quote(usage[i])
	}
	q := strings.NewReplacer(
		"{{PAYLOAD}}", "["+strings.Join(payload, ", ")+"]",
		"{{TRACES}}", "["+strings.Join(traces, ", ")+"]",
		"{{USAGE}}", "["+strings.Join(usage, ", ")+"]",
		"{{SPMAP}}", strings.Join(spmap, ", "),
	).Replace(bareJoinSQL)
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(q); err != nil {
		tb.Fatalf("bare join: %v", err)
	}
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM bare_attribution`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return db, n
}

// TestBareJoinAgreesWithPipeline keeps the benchmark honest: the hand-written
// join must do the same work and reach the same answers on the same input.
func TestBareJoinAgreesWithPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a workload")
	}
	dir := workload(t, t.TempDir(), 3000)
	tmp := t.TempDir()
	store := filepath.Join(tmp, "obolus.duckdb")
	rep := runPipeline(t, dir, store)
	db, n := bareJoin(t, dir, filepath.Join(tmp, "bare.duckdb"))
	defer db.Close()
	if n != rep.Invocations {
		t.Fatalf("bare join wrote %d rows, pipeline saw %d invocations", n, rep.Invocations)
	}
	if _, err := db.Exec(`ATTACH '` + store + `' AS ob (READ_ONLY)`); err != nil {
		t.Fatal(err)
	}
	var differ int64
	err := db.QueryRow(`
SELECT count(*) FROM bare_attribution b JOIN ob.attribution o USING (invocation_id)
WHERE b.end_user <> o.end_user OR b.match_method <> o.match_method`).Scan(&differ)
	if err != nil {
		t.Fatal(err)
	}
	if differ != 0 {
		t.Errorf("%d of %d invocations differ between the bare join and the pipeline", differ, n)
	}
}

// copyFloor copies dir's usage Parquet files into a table of a fresh DuckDB
// file, no join at all: the I/O floor of a batch over the same input.
func copyFloor(tb testing.TB, dir, dbPath string) {
	tb.Helper()
	usage, err := filepath.Glob(filepath.Join(dir, "usage", "ai_gateway_usage-*.parquet"))
	if err != nil || len(usage) == 0 {
		tb.Fatalf("no usage parquet in %s", dir)
	}
	for i := range usage {
		usage[i] = "'" + strings.ReplaceAll(usage[i], "'", "''") + "'"
	}
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE usage_copy AS SELECT * FROM read_parquet([" + strings.Join(usage, ", ") + "])"); err != nil {
		tb.Fatalf("copy floor: %v", err)
	}
}

// childEnv names the workload a re-executed test binary attributes, so that
// the pipeline's peak RSS is its own process's, not the benchmark's.
const childEnv = "OBOLUS_BENCH_PIPELINE"

// TestBenchPipelineChild is the pipeline run BenchmarkBatch measures in a
// process of its own; it does nothing otherwise.
func TestBenchPipelineChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run by BenchmarkBatch")
	}
	dir, store, _ := strings.Cut(spec, "|")
	rep := runPipeline(t, dir, store)
	fmt.Printf("usage_rows %d\n", rep.UsageRows)
	// The process's own high-water mark: the parent's rusage Maxrss of a
	// child can carry the parent's resident set from before the exec, and
	// the parent holds the generated workload.
	if hwm, err := peakrss.Of(0); err == nil {
		fmt.Printf("peak_rss_bytes %d\n", hwm)
	}
}

// pipelineChild runs the pipeline in a child process and returns its wall
// time, usage rows and peak RSS.
func pipelineChild(tb testing.TB, dir, store string) (time.Duration, int64, int64) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchPipelineChild$", "-test.count", "1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir+"|"+store)
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		tb.Fatalf("pipeline child: %v\n%s", err, out)
	}
	var rows, rss int64
	for _, line := range strings.Split(string(out), "\n") {
		if n, ok := strings.CutPrefix(line, "usage_rows "); ok {
			fmt.Sscan(n, &rows)
		}
		if n, ok := strings.CutPrefix(line, "peak_rss_bytes "); ok {
			fmt.Sscan(n, &rss)
		}
	}
	if ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage); rss == 0 && ru != nil {
		rss = ru.Maxrss * 1024 // kilobytes on Linux; may include the parent's, see above
	}
	return took, rows, rss
}

// BenchmarkBatch runs the whole batch job (read Parquet, merge agent logs,
// dedup, match, price, write to DuckDB) over ≥ 5M usage rows in a process of
// its own, and in the same run the two references:
//   - x_of_copy_floor: its time over DuckDB copying the same usage files into
//     a table, no join at all — the I/O floor;
//   - x_time_of_bare_sql: its time over a hand-written DuckDB join of the
//     same files (ids, then a unique time-window candidate), the ceiling an
//     all-SQL implementation reaches on this machine.
//
// peak_rss_MiB is the pipeline process's peak resident set. Set
// OBOLUS_BENCH_DIR to keep the generated workload between runs;
// OBOLUS_BENCH_REQUESTS sizes it.
func BenchmarkBatch(b *testing.B) {
	requests := 500_000
	if s := os.Getenv("OBOLUS_BENCH_REQUESTS"); s != "" {
		fmt.Sscan(s, &requests)
	}
	dir := os.Getenv("OBOLUS_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "workload")
	}
	began := time.Now()
	workload(b, dir, requests)
	b.Logf("workload ready in %s", time.Since(began).Round(time.Millisecond))

	var pipe, bare, floor time.Duration
	var rows, peak int64
	for i := 0; i < b.N; i++ {
		tmp := b.TempDir()
		start := time.Now()
		copyFloor(b, dir, filepath.Join(tmp, "copy.duckdb"))
		floor += time.Since(start)

		took, n, rss := pipelineChild(b, dir, filepath.Join(tmp, "obolus.duckdb"))
		pipe += took
		rows, peak = n, max(peak, rss)

		start = time.Now()
		db, _ := bareJoin(b, dir, filepath.Join(tmp, "bare.duckdb"))
		bare += time.Since(start)
		db.Close()
	}
	n := float64(b.N)
	b.ReportMetric(float64(rows)*n/pipe.Seconds(), "rows/s")
	b.ReportMetric(float64(rows)*n/floor.Seconds(), "copy_rows/s")
	b.ReportMetric(pipe.Seconds()/floor.Seconds(), "x_of_copy_floor")
	b.ReportMetric(float64(rows)*n/bare.Seconds(), "bare_sql_rows/s")
	b.ReportMetric(pipe.Seconds()/bare.Seconds(), "x_time_of_bare_sql")
	b.ReportMetric(float64(rows), "usage_rows")
	b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MiB")
}
