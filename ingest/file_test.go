package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/obolus/obolus/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// window is the window the golden tests read: 09:00 to 12:00 UTC.
var window = Window{
	From: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
	To:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
}

// usageOut shows Source, which UsageEvent leaves out of its JSON.
type usageOut struct {
	schemas.UsageEvent
	Source string `json:"source"`
}

// result is everything a read produced, as golden files hold it.
type result struct {
	Stats  Stats                  `json:"stats"`
	Usage  []usageOut             `json:"usage,omitempty"`
	Agents []schemas.AgentRequest `json:"agents,omitempty"`
	Dead   []schemas.DeadLetter   `json:"dead,omitempty"`
}

// collect returns an Emit that appends into r.
func collect(r *result) Emit {
	return Emit{
		Usage: func(b []schemas.UsageEvent) error {
			for _, u := range b {
				r.Usage = append(r.Usage, usageOut{u, u.Source})
			}
			return nil
		},
		Agents: func(b []schemas.AgentRequest) error { r.Agents = append(r.Agents, b...); return nil },
		Dead:   func(d schemas.DeadLetter) error { r.Dead = append(r.Dead, d); return nil },
	}
}

func read(t *testing.T, spec Spec, w Window) result {
	t.Helper()
	var r result
	st, err := ReadFiles(context.Background(), spec, w, collect(&r))
	if err != nil {
		t.Fatal(err)
	}
	r.Stats = st
	checkStats(t, r)
	return r
}

// checkStats asserts that every row is counted exactly once, and that the
// counts match what was emitted.
func checkStats(t *testing.T, r result) {
	t.Helper()
	st := r.Stats
	if !st.Balanced() {
		t.Errorf("stats do not reconcile: %+v", st)
	}
	if st.Emitted != int64(len(r.Usage)+len(r.Agents)) || st.Dead != int64(len(r.Dead)) {
		t.Errorf("stats %+v, but %d usage, %d agents, %d dead emitted", st, len(r.Usage), len(r.Agents), len(r.Dead))
	}
}

// golden compares got, as indented JSON, with testdata/name; -update rewrites it.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, b)
	}
}

func TestReadFilesGolden(t *testing.T) {
	agent := Spec{AgentEndpoint: "", ServicePrincipal: "sp-agent"}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"usage.jsonl", Spec{Kind: KindUsage, Path: "testdata/usage.jsonl"}},
		{"usage.csv", Spec{Kind: KindUsage, Path: "testdata/usage.csv"}},
		{"payload.jsonl", Spec{Kind: KindPayload, Path: "testdata/payload.jsonl", AgentEndpoint: "agent-a", ServicePrincipal: agent.ServicePrincipal}},
		{"trace.jsonl", Spec{Kind: KindTrace, Path: "testdata/trace.jsonl", ServicePrincipal: agent.ServicePrincipal}},
		// v2 names neither service principal nor agent: each span's resource does.
		{"otel_spans_v2.jsonl", Spec{Kind: KindOTelSpans, Path: "testdata/otel_spans_v2.jsonl"}},
		{"otel_spans_v1.jsonl", Spec{Kind: KindOTelSpans, Path: "testdata/otel_spans_v1.jsonl", ServicePrincipal: agent.ServicePrincipal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := read(t, tc.spec, window)
			golden(t, tc.name+".golden.json", r)
		})
	}
}

// TestReadFilesUsageJSONL pins the facts the golden file shows, so a careless
// -update cannot bless a regression.
func TestReadFilesUsageJSONL(t *testing.T) {
	r := read(t, Spec{Kind: KindUsage, Path: "testdata/usage.jsonl"}, window)
	want := Stats{Files: 1, Rows: 14, Emitted: 5, OutsideWindow: 2, Dead: 7}
	if r.Stats != want {
		t.Fatalf("stats %+v, want %+v", r.Stats, want)
	}
	var ids []string
	for _, u := range r.Usage {
		ids = append(ids, u.InvocationID)
		if u.Source != schemas.SourceAIGateway || u.EventTime.Location() != time.UTC {
			t.Errorf("%s: source %q, time %v", u.InvocationID, u.Source, u.EventTime)
		}
	}
	if got := strings.Join(ids, ","); got != "inv-1,inv-2,inv-3,inv-4,inv-crlf" {
		t.Errorf("emitted %s", got)
	}
	type dl struct{ loc, field, reason string }
	var got []dl
	for _, d := range r.Dead {
		got = append(got, dl{d.Location, d.Field, d.Reason})
		if d.Source != "testdata/usage.jsonl" || d.Kind != schemas.KindUsage || d.Record == "" || !utf8.ValidString(d.Record) {
			t.Errorf("dead letter %+v", d)
		}
	}
	wantDead := []dl{
		{"line 8", "invocation_id", "missing"},
		{"line 9", "event_time", `not a timestamp: "01/03/2026 10:00"`},
		{"line 10", "output_tokens", "negative: -5"},
		{"line 11", "schema_version", "unknown schema_version 2"},
		{"line 12", "request_tags", `value of key "attempt" is not a string: 2`},
		{"line 13", "", "invalid JSON at byte 66: unexpected end, want a string"},
		{"line 16", "requester", "invalid UTF-8"},
	}
	if !reflect.DeepEqual(got, wantDead) {
		t.Errorf("dead letters:\n got %q\nwant %q", got, wantDead)
	}
}

// TestFormatsAgree reads the same rows from JSONL, CSV and Parquet and
// expects identical records: one set of field rules for all formats.
func TestFormatsAgree(t *testing.T) {
	dir := t.TempDir()
	rows := sampleUsage(BatchSize + 100) // more than one record batch
	jsonl := filepath.Join(dir, "u.jsonl")
	writeUsageJSONL(t, jsonl, rows)
	csvPath := filepath.Join(dir, "u.csv")
	writeUsageCSV(t, csvPath, rows)
	pq := filepath.Join(dir, "u.parquet")
	writeUsageParquet(t, pq, rows, 1000)

	want := read(t, Spec{Kind: KindUsage, Path: jsonl}, Window{})
	if len(want.Usage) != len(rows) || len(want.Dead) != 0 {
		t.Fatalf("jsonl: %+v", want.Stats)
	}
	for i, u := range want.Usage {
		if !reflect.DeepEqual(u.UsageEvent, rows[i]) {
			t.Fatalf("jsonl row %d:\n got %+v\nwant %+v", i, u.UsageEvent, rows[i])
		}
	}
	for _, path := range []string{csvPath, pq} {
		got := read(t, Spec{Kind: KindUsage, Path: path}, Window{})
		if !reflect.DeepEqual(got.Usage, want.Usage) {
			for i := range got.Usage {
				if i < len(want.Usage) && !reflect.DeepEqual(got.Usage[i], want.Usage[i]) {
					t.Fatalf("%s row %d:\n got %+v\nwant %+v", path, i, got.Usage[i], want.Usage[i])
				}
			}
			t.Fatalf("%s: %d rows, want %d (dead %+v)", path, len(got.Usage), len(want.Usage), got.Dead)
		}
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		w    Window
		t    time.Time
		want bool
	}{
		{Window{}, t0, true},
		{Window{From: t0}, t0, true},
		{Window{From: t0}, t0.Add(-1), false},
		{Window{To: t0}, t0, false},
		{Window{To: t0}, t0.Add(-1), true},
		{Window{From: t0, To: t0.Add(time.Hour)}, t0.Add(30 * time.Minute), true},
		{Window{From: t0.In(time.FixedZone("x", 3600)), To: t0.Add(time.Hour)}, t0, true},
	} {
		if got := tc.w.Contains(tc.t); got != tc.want {
			t.Errorf("%+v.Contains(%v) = %v", tc.w, tc.t, got)
		}
	}
	rows := sampleUsage(100) // one row a minute from 10:00
	path := filepath.Join(t.TempDir(), "u.jsonl")
	writeUsageJSONL(t, path, rows)
	r := read(t, Spec{Kind: KindUsage, Path: path}, Window{From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute)})
	if r.Stats.Emitted != 10 || r.Stats.OutsideWindow != 90 {
		t.Fatalf("stats %+v", r.Stats)
	}
	if r.Usage[0].InvocationID != rows[10].InvocationID || r.Usage[9].InvocationID != rows[19].InvocationID {
		t.Fatalf("window kept %s..%s", r.Usage[0].InvocationID, r.Usage[9].InvocationID)
	}
	_, err := ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: path}, Window{From: t0, To: t0}, collect(&result{}))
	if err == nil {
		t.Fatal("empty window accepted")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	rows := sampleUsage(3)
	for _, p := range []string{
		"request_date=2026-03-01/part-00001.json",
		"request_date=2026-03-01/part-00000.json",
		"request_date=2026-03-02/part-00000.jsonl.gz",
		"b.ndjson",
	} {
		writeUsageJSONL(t, filepath.Join(dir, p), rows)
	}
	for _, p := range []string{"_SUCCESS", ".part-00000.json.crc", "_delta_log/00000.json", ".hidden/x.jsonl", "notes.txt", "other.csv"} {
		writeFile(t, filepath.Join(dir, p), []byte("not data\n"))
	}
	got, err := resolve(Spec{Path: dir, Format: "jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	rel := func(ps []string) string {
		var out []string
		for _, p := range ps {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return strings.Join(out, " ")
	}
	want := "b.ndjson request_date=2026-03-01/part-00000.json request_date=2026-03-01/part-00001.json request_date=2026-03-02/part-00000.jsonl.gz"
	if rel(got) != want {
		t.Fatalf("resolve = %s", rel(got))
	}
	r := read(t, Spec{Kind: KindUsage, Path: dir, Format: "jsonl"}, Window{})
	if r.Stats.Files != 4 || r.Stats.Emitted != 12 || r.Stats.Dead != 0 {
		t.Fatalf("stats %+v", r.Stats)
	}
	// Without a format, the directory holds a CSV that is not usage data:
	// its header names no usage column, and the read fails naming it.
	_, err = ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: dir}, Window{}, collect(&result{}))
	if err == nil || !strings.Contains(err.Error(), "other.csv") || !strings.Contains(err.Error(), "header row missing") {
		t.Fatalf("directory with a CSV that is not usage data: %v", err)
	}
	got, err = resolve(Spec{Path: filepath.Join(dir, "request_date=*", "*.json")})
	if err != nil || rel(got) != "request_date=2026-03-01/part-00000.json request_date=2026-03-01/part-00001.json" {
		t.Fatalf("glob: %s %v", rel(got), err)
	}
	if _, err := resolve(Spec{Path: filepath.Join(dir, "nothing-*.json")}); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("empty glob: %v", err)
	}
	writeFile(t, filepath.Join(dir, "empty", "_SUCCESS"), nil)
	if _, err := resolve(Spec{Path: filepath.Join(dir, "empty")}); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("dir without data files: %v", err)
	}
	_, err = ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: filepath.Join(dir, "missing.jsonl")}, Window{}, collect(&result{}))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestReadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "u.jsonl")
	writeUsageJSONL(t, good, sampleUsage(3))
	noop := collect(&result{})
	for _, tc := range []struct {
		name string
		spec Spec
		emit Emit
		want string
	}{
		{"no kind", Spec{Path: good}, noop, "spec.Kind is empty"},
		{"bad kind", Spec{Kind: "billing", Path: good}, noop, `spec.Kind "billing"`},
		{"bad format", Spec{Kind: KindUsage, Path: good, Format: "xml"}, noop, `spec.Format "xml"`},
		{"no path", Spec{Kind: KindUsage}, noop, "spec.Path is empty"},
		{"no usage emit", Spec{Kind: KindUsage, Path: good}, Emit{Dead: noop.Dead}, "emit.Usage is nil"},
		{"no agents emit", Spec{Kind: KindTrace, Path: good}, Emit{Dead: noop.Dead}, "emit.Agents is nil"},
		{"no dead emit", Spec{Kind: KindUsage, Path: good}, Emit{Usage: noop.Usage}, "emit.Dead is nil"},
		{"unknown extension", Spec{Kind: KindUsage, Path: writeFile(t, filepath.Join(dir, "u.txt"), []byte("{}"))}, noop, "cannot tell the format"},
		{"corrupt parquet", Spec{Kind: KindUsage, Path: writeFile(t, filepath.Join(dir, "bad.parquet"), []byte("PAR1 this is not parquet"))}, noop, "bad.parquet"},
		{"corrupt gzip", Spec{Kind: KindUsage, Path: writeRaw(t, filepath.Join(dir, "bad.jsonl.gz"), []byte("not gzip"))}, noop, "bad.jsonl.gz"},
		{"truncated gzip", Spec{Kind: KindUsage, Path: writeRaw(t, filepath.Join(dir, "cut.jsonl.gz"), gzipped(t, 2000)[:200])}, noop, "cut.jsonl.gz: unexpected EOF"},
		{"emit fails", Spec{Kind: KindUsage, Path: good}, Emit{Usage: func([]schemas.UsageEvent) error { return errors.New("sink down") }, Dead: noop.Dead}, "sink down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFiles(context.Background(), tc.spec, Window{}, tc.emit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadFiles(ctx, Spec{Kind: KindUsage, Path: good}, Window{}, noop); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestBatching(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.jsonl")
	rows := sampleUsage(BatchSize*2 + 5)
	writeUsageJSONL(t, path, rows)
	var sizes []int
	var kept [][]schemas.UsageEvent
	st, err := ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: path}, Window{}, Emit{
		Usage: func(b []schemas.UsageEvent) error { sizes = append(sizes, len(b)); kept = append(kept, b); return nil },
		Dead:  func(schemas.DeadLetter) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sizes, []int{BatchSize, BatchSize, 5}) || st.Emitted != int64(len(rows)) {
		t.Fatalf("batches %v, stats %+v", sizes, st)
	}
	// Batches belong to the callee: later reading must not overwrite them.
	if kept[0][0].InvocationID != rows[0].InvocationID || kept[1][0].InvocationID != rows[BatchSize].InvocationID {
		t.Fatal("an emitted batch was overwritten")
	}
}

// TestEmitStops checks that an Emit error stops decoding at once and that the
// decoding goroutine is gone when ReadFiles returns.
func TestEmitStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.jsonl")
	writeUsageJSONL(t, path, sampleUsage(BatchSize*6))
	before := runtime.NumGoroutine()
	calls := 0
	st, err := ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: path}, Window{}, Emit{
		Usage: func([]schemas.UsageEvent) error { calls++; return errors.New("sink down") },
		Dead:  func(schemas.DeadLetter) error { return nil },
	})
	if err == nil || !strings.Contains(err.Error(), "emit usage: sink down") || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	// Decoding ran at most a few batches ahead of the failed one.
	if st.Rows > 4*BatchSize {
		t.Fatalf("read %d rows after the sink failed", st.Rows)
	}
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left, %d before", n, before)
	}
}

func TestLongLinesAndRecords(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"invocation_id":"inv-long","requester":"sp","event_time":"2026-03-01T10:00:00Z","pad":"`)
	b.WriteString(strings.Repeat("é", MaxLine/2)) // 2 bytes each: the line is just over MaxLine
	b.WriteString("\"}\n")
	rows := sampleUsage(2)
	var tail bytes.Buffer
	for _, u := range rows {
		tail.Write(mustJSON(t, u))
		tail.WriteByte('\n')
	}
	// A line just under the reader's buffer but over the record limit, with a
	// multi-byte rune across the cut.
	big := `{"invocation_id":"inv-big","event_time":"bad","requester":"sp","pad":"` + strings.Repeat("x", schemas.MaxDeadLetterRecord-72) + "€€€\"}\n"
	path := writeFile(t, filepath.Join(t.TempDir(), "u.jsonl"), append(append(b.Bytes(), big...), tail.Bytes()...))
	r := read(t, Spec{Kind: KindUsage, Path: path}, Window{})
	if r.Stats.Rows != 4 || r.Stats.Emitted != 2 || r.Stats.Dead != 2 {
		t.Fatalf("stats %+v", r.Stats)
	}
	d := r.Dead[0]
	if d.Location != "line 1" || !strings.Contains(d.Reason, "line longer than") || len(d.Record) > schemas.MaxDeadLetterRecord || !utf8.ValidString(d.Record) {
		t.Fatalf("long line dead letter: %+v", d.Location)
	}
	d = r.Dead[1]
	if d.Location != "line 2" || d.Field != "event_time" || len(d.Record) > schemas.MaxDeadLetterRecord || !utf8.ValidString(d.Record) || strings.HasSuffix(d.Record, "\uFFFD") {
		t.Fatalf("big record: %s %s len %d", d.Location, d.Field, len(d.Record))
	}
	if r.Usage[0].InvocationID != rows[0].InvocationID {
		t.Fatal("reading did not go on after the long line")
	}
}

func TestAgentKinds(t *testing.T) {
	r := read(t, Spec{Kind: KindPayload, Path: "testdata/payload.jsonl", AgentEndpoint: "agent-a", ServicePrincipal: "sp-a"}, window)
	if r.Stats != (Stats{Files: 1, Rows: 5, Emitted: 3, OutsideWindow: 1, Dead: 1}) {
		t.Fatalf("payload stats %+v", r.Stats)
	}
	want := schemas.AgentRequest{AgentRequestID: "dbr-1", ClientRequestID: "c-1", EndUser: "ann@example.com", AgentEndpoint: "agent-a",
		ServicePrincipal: "sp-a", StartTime: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), DurationMS: 4200, Status: "OK", Source: schemas.SourcePayload}
	if r.Agents[0] != want {
		t.Fatalf("payload row:\n got %+v\nwant %+v", r.Agents[0], want)
	}
	if r.Dead[0].Kind != schemas.KindAgentRequest || r.Dead[0].Field != "databricks_request_id" {
		t.Fatalf("dead %+v", r.Dead[0])
	}
	r = read(t, Spec{Kind: KindTrace, Path: "testdata/trace.jsonl", ServicePrincipal: "sp-a"}, window)
	if r.Stats != (Stats{Files: 1, Rows: 4, Emitted: 3, Dead: 1}) {
		t.Fatalf("trace stats %+v", r.Stats)
	}
	endpoints := []string{r.Agents[0].AgentEndpoint, r.Agents[1].AgentEndpoint, r.Agents[2].AgentEndpoint}
	if !reflect.DeepEqual(endpoints, []string{"agent-a", "", "agent-b"}) || r.Agents[1].DurationMS != 500 || r.Agents[2].EndUser != "carol@example.com" {
		t.Fatalf("traces %+v", r.Agents)
	}
}

func TestGzip(t *testing.T) {
	dir := t.TempDir()
	rows := sampleUsage(10)
	writeUsageJSONL(t, filepath.Join(dir, "u.jsonl.gz"), rows)
	r := read(t, Spec{Kind: KindUsage, Path: filepath.Join(dir, "u.jsonl.gz")}, Window{})
	if r.Stats.Emitted != 10 {
		t.Fatalf("stats %+v", r.Stats)
	}
}

// sampleUsage makes n valid usage events, one a minute from 10:00 UTC, with
// every kind of column set.
func sampleUsage(n int) []schemas.UsageEvent {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	out := make([]schemas.UsageEvent, n)
	for i := range out {
		u := schemas.UsageEvent{
			InvocationID: "inv-" + itoa(i), RequestID: "req-" + itoa(i/3), AccountID: "acc-1", WorkspaceID: "1001",
			SchemaVersion: 1, EventTime: t0.Add(time.Duration(i)*time.Minute + time.Duration(i)*123456*time.Nanosecond/1000*1000),
			EndpointID: "ep-1", EndpointName: "gateway", DestinationName: "databricks-gpt-5-mini",
			DestinationModel: "gpt-5-mini", Requester: "sp-" + itoa(i%3),
			InputTokens: int64(100 + i), OutputTokens: int64(i % 7), TotalTokens: int64(100 + i + i%7),
			TokenDetails: schemas.TokenDetails{CacheReadInputTokens: int64(i % 5), OutputReasoningTokens: int64(i % 2)},
			StatusCode:   200, LatencyMS: int64(10 * i), Source: schemas.SourceAIGateway,
		}
		if i%4 != 0 {
			u.RequestTags = map[string]string{"mlflow_trace_id": "tr-" + itoa(i), "note": "é \"quoted\", comma"}
		}
		out[i] = u
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(b)
		w.Close()
		b = z.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// gzipped is n usage rows as gzipped JSONL.
func gzipped(t testing.TB, n int) []byte {
	path := filepath.Join(t.TempDir(), "x.jsonl.gz")
	writeUsageJSONL(t, path, sampleUsage(n))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeRaw(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeUsageJSONL(t testing.TB, path string, rows []schemas.UsageEvent) {
	t.Helper()
	var b bytes.Buffer
	unread := map[string]any{"endpoint_tags": unreadEndpointTags}
	for _, c := range unreadUsageCols {
		unread[c.name] = c.value
	}
	tail := mustJSON(t, unread)
	for _, u := range rows {
		line := mustJSON(t, u)
		b.Write(line[:len(line)-1])
		b.WriteByte(',')
		b.Write(tail[1:])
		b.WriteByte('\n')
	}
	writeFile(t, path, b.Bytes())
}
