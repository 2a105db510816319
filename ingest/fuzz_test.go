package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fuzzRead reads b as one file of the format through the real reader and
// checks what must hold for any input: no panic, no hang, and counts that
// reconcile — every row is emitted, outside the window, dead or skipped.
func fuzzRead(f *testing.F, kind Kind, format string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "in."+format)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var r result
		st, err := ReadFiles(context.Background(), Spec{Kind: kind, Path: path, Format: format, ServicePrincipal: "sp", AgentEndpoint: "agent"}, Window{}, collect(&r))
		if err != nil {
			return // a file that cannot be read at all fails as a whole
		}
		r.Stats = st
		checkStats(t, r)
	})
}

func seed(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzReadJSONL(f *testing.F) {
	fuzzRead(f, KindUsage, "jsonl", seed(f, "testdata/usage.jsonl"), []byte("{}\n{\"invocation_id\":\n"), genUsageJSONL(3))
}

func FuzzReadCSV(f *testing.F) {
	fuzzRead(f, KindUsage, "csv", seed(f, "testdata/usage.csv"),
		[]byte("invocation_id,event_time,requester\n\"a,2026-11-01,x\nb,\"2026\"x,y\n"), []byte("\ufeffinvocation_id\r\n\"\"\"\r\n"))
}

func FuzzReadParquet(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.parquet")
	writeUsageParquet(f, path, sampleUsage(5), 2)
	fuzzRead(f, KindUsage, "parquet", seed(f, path))
}

func FuzzReadTraceJSONL(f *testing.F) {
	fuzzRead(f, KindTrace, "jsonl", seed(f, "testdata/trace.jsonl"))
}

func FuzzReadOTelSpansJSONL(f *testing.F) {
	fuzzRead(f, KindOTelSpans, "jsonl", seed(f, "testdata/otel_spans_v2.jsonl"), seed(f, "testdata/otel_spans_v1.jsonl"))
}
