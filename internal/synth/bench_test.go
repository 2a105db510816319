package synth

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// BenchmarkGenerate measures generation speed per format, in usage rows per
// second. OBOLUS_SYNTH_BENCH_REQUESTS sets the number of agent requests
// (default 20000; 600000 gives about 5.6M usage rows).
func BenchmarkGenerate(b *testing.B) {
	n := DefaultAgentRequests
	if v := os.Getenv("OBOLUS_SYNTH_BENCH_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("OBOLUS_SYNTH_BENCH_REQUESTS: %v", err)
		}
	}
	for _, format := range []string{FormatJSONL, FormatCSV, FormatParquet} {
		b.Run(format, func(b *testing.B) {
			var rows int
			for i := 0; b.Loop(); i++ {
				dir := b.TempDir()
				res, err := Generate(context.Background(), Config{Seed: int64(i), AgentRequests: n, Format: format}, dir)
				if err != nil {
					b.Fatal(err)
				}
				rows += res.UsageRows + res.LegacyRows
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
