package ingest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

var benchT0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// genUsageJSONL writes n realistic usage rows as JSON lines: a few
// workspaces, endpoints and service principals, 80% with a trace-id tag.
func genUsageJSONL(n int) []byte {
	rng := rand.New(rand.NewPCG(7, 11))
	var b bytes.Buffer
	for i := range n {
		ts := benchT0.Add(time.Duration(i) * 17 * time.Millisecond)
		tags := `null`
		if rng.IntN(10) < 8 {
			tags = fmt.Sprintf(`{"mlflow_trace_id":"tr-%032x","agent_request_id":"dbr-%08d"}`, rng.Uint64(), i/6)
		}
		fmt.Fprintf(&b, `{"account_id":"acc-7f1c","workspace_id":"%d","request_id":"req-%08d","invocation_id":"inv-%010d",`+
			`"schema_version":1,"event_time":"%s","endpoint_id":"ep-%d","endpoint_name":"gateway-%d","endpoint_tags":{"team":"ml"},`+
			`"destination_type":"FOUNDATION_MODEL","destination_name":"databricks-gpt-5-mini","destination_id":"dest-1",`+
			`"destination_model":"gpt-5-mini","requester":"sp-%d","requester_type":"SERVICE_PRINCIPAL",`+
			`"api_type":"mlflow/v1/chat/completions","user_agent":"openai-python/1.52.0","request_tags":%s,`+
			`"input_tokens":%d,"output_tokens":%d,"total_tokens":%d,`+
			`"token_details":{"cache_read_input_tokens":%d,"cache_creation_input_tokens":0,"output_reasoning_tokens":null},`+
			`"status_code":200,"latency_ms":%d,"ip_address":null,"url":"https://ws.cloud.databricks.com/ai-gateway/mlflow/v1/chat/completions",`+
			`"response_content_type":"application/json","time_to_first_byte_ms":%d}`+"\n",
			1000+rng.IntN(3), i/6, i, ts.Format("2006-01-02 15:04:05.000"), rng.IntN(4), rng.IntN(4), rng.IntN(8), tags,
			500+rng.IntN(4000), 50+rng.IntN(800), 0, rng.IntN(500), 200+rng.IntN(3000), 100+rng.IntN(500))
	}
	return b.Bytes()
}

// BenchmarkDecodeUsage measures DecodeUsage on realistic rows (about 1 KB,
// 80% with request tags).
func BenchmarkDecodeUsage(b *testing.B) {
	lines := bytes.Split(bytes.TrimSpace(genUsageJSONL(10_000)), []byte("\n"))
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.SetBytes(size / int64(len(lines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := DecodeUsage(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkReadFilesJSONL measures ReadFiles end to end on a 200k-row JSONL
// file: read, decode, window, batch.
func BenchmarkReadFilesJSONL(b *testing.B) {
	const rows = 200_000
	path := filepath.Join(b.TempDir(), "usage.jsonl")
	data := genUsageJSONL(rows)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	benchRead(b, Spec{Kind: KindUsage, Path: path}, rows, int64(len(data)))
}

func benchRead(b *testing.B, spec Spec, rows int, size int64) {
	benchReadEmitting(b, spec, rows, rows, size)
}

// benchReadEmitting is benchRead for rows of which only emitted become
// records (the rest skipped).
func benchReadEmitting(b *testing.B, spec Spec, rows, emitted int, size int64) {
	emit := Emit{
		Usage:  func([]schemas.UsageEvent) error { return nil },
		Agents: func([]schemas.AgentRequest) error { return nil },
		Dead:   func(dl schemas.DeadLetter) error { return fmt.Errorf("dead letter: %+v", dl) },
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		st, err := ReadFiles(context.Background(), spec, Window{}, emit)
		if err != nil {
			b.Fatal(err)
		}
		if st.Emitted != int64(emitted) || st.Rows != int64(rows) {
			b.Fatalf("emitted %d of %d rows, want %d of %d", st.Emitted, st.Rows, emitted, rows)
		}
	}
	b.ReportMetric(float64(b.N)*float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkReadFilesParquet measures ReadFiles on 200k usage rows in Parquet
// written by arrow-go (row groups of 64k rows, maps and a struct column).
func BenchmarkReadFilesParquet(b *testing.B) {
	const rows = 200_000
	path := filepath.Join(b.TempDir(), "usage.parquet")
	writeUsageParquet(b, path, sampleUsage(rows), 64<<10)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	benchRead(b, Spec{Kind: KindUsage, Path: path}, rows, st.Size())
}

// BenchmarkReadFilesCSV measures ReadFiles on 200k usage rows in CSV.
func BenchmarkReadFilesCSV(b *testing.B) {
	const rows = 200_000
	path := filepath.Join(b.TempDir(), "usage.csv")
	writeUsageCSV(b, path, sampleUsage(rows))
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	benchRead(b, Spec{Kind: KindUsage, Path: path}, rows, st.Size())
}
