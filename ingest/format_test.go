package ingest

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/obolus/obolus/schemas"
)

var usageStringCols = []struct {
	name string
	get  func(*schemas.UsageEvent) string
}{
	{"invocation_id", func(u *schemas.UsageEvent) string { return u.InvocationID }},
	{"request_id", func(u *schemas.UsageEvent) string { return u.RequestID }},
	{"account_id", func(u *schemas.UsageEvent) string { return u.AccountID }},
	{"workspace_id", func(u *schemas.UsageEvent) string { return u.WorkspaceID }},
	{"endpoint_id", func(u *schemas.UsageEvent) string { return u.EndpointID }},
	{"endpoint_name", func(u *schemas.UsageEvent) string { return u.EndpointName }},
	{"destination_name", func(u *schemas.UsageEvent) string { return u.DestinationName }},
	{"destination_model", func(u *schemas.UsageEvent) string { return u.DestinationModel }},
	{"requester", func(u *schemas.UsageEvent) string { return u.Requester }},
}

// unreadUsageCols are columns of system.ai_gateway.usage that obolus does not
// read (endpoint_tags too, written as unreadEndpointTags); the writers fill
// them with fixed values, so every test file carries them as an export does.
var unreadUsageCols = []struct{ name, value string }{
	{"destination_type", "FOUNDATION_MODEL"}, {"destination_id", "dest-1"}, {"requester_type", "SERVICE_PRINCIPAL"},
	{"api_type", "mlflow/v1/chat/completions"}, {"user_agent", "openai-python/1.52.0"},
}

var unreadEndpointTags = map[string]string{"team": "ml"}

// writeUsageCSV writes rows the way a Databricks CSV export does: a header,
// TIMESTAMP as "2006-01-02 15:04:05.ffffff", maps and structs as JSON text.
func writeUsageCSV(t testing.TB, path string, rows []schemas.UsageEvent) {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	header := []string{"url"} // a column obolus does not read
	for _, c := range usageStringCols {
		header = append(header, c.name)
	}
	for _, c := range unreadUsageCols {
		header = append(header, c.name)
	}
	header = append(header, "schema_version", "event_time", "endpoint_tags", "request_tags", "input_tokens", "output_tokens",
		"total_tokens", "token_details", "status_code", "latency_ms")
	w.Write(header)
	jsonOrEmpty := func(m map[string]string) string {
		if m == nil {
			return ""
		}
		return string(mustJSON(t, m))
	}
	for _, u := range rows {
		rec := []string{"https://example.com/ai-gateway"}
		for _, c := range usageStringCols {
			rec = append(rec, c.get(&u))
		}
		for _, c := range unreadUsageCols {
			rec = append(rec, c.value)
		}
		rec = append(rec, strconv.Itoa(int(u.SchemaVersion)), u.EventTime.Format("2006-01-02 15:04:05.999999"),
			jsonOrEmpty(unreadEndpointTags), jsonOrEmpty(u.RequestTags),
			strconv.FormatInt(u.InputTokens, 10), strconv.FormatInt(u.OutputTokens, 10), strconv.FormatInt(u.TotalTokens, 10),
			string(mustJSON(t, u.TokenDetails)), strconv.Itoa(int(u.StatusCode)), strconv.FormatInt(u.LatencyMS, 10))
		w.Write(rec)
	}
	w.Flush()
	writeFile(t, path, b.Bytes())
}

var tokenDetailsType = arrow.StructOf(
	arrow.Field{Name: "cache_read_input_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "cache_creation_input_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "output_reasoning_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
)

// usageArrowSchema is system.ai_gateway.usage as Arrow types, as Spark would
// write it to Parquet, plus an unused column.
func usageArrowSchema() *arrow.Schema {
	var fields []arrow.Field
	for _, c := range usageStringCols {
		fields = append(fields, arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	for _, c := range unreadUsageCols {
		fields = append(fields, arrow.Field{Name: c.name, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: "schema_version", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		arrow.Field{Name: "endpoint_tags", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		arrow.Field{Name: "request_tags", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		arrow.Field{Name: "input_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "output_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "total_tokens", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "token_details", Type: tokenDetailsType, Nullable: true},
		arrow.Field{Name: "status_code", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "latency_ms", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "response_content_type", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	return arrow.NewSchema(fields, nil)
}

// writeUsageParquet writes rows with arrow-go, in row groups of rowGroup rows.
func writeUsageParquet(t testing.TB, path string, rows []schemas.UsageEvent, rowGroup int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := usageArrowSchema()
	fw, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rowGroup)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(rows); start += 5000 {
		rec := usageRecord(sc, rows[start:min(start+5000, len(rows))])
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

func usageRecord(sc *arrow.Schema, rows []schemas.UsageEvent) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	appendMap := func(mb *array.MapBuilder, m map[string]string) {
		if m == nil {
			mb.AppendNull()
			return
		}
		mb.Append(true)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			mb.KeyBuilder().(*array.StringBuilder).Append(k)
			mb.ItemBuilder().(*array.StringBuilder).Append(m[k])
		}
	}
	for _, u := range rows {
		i := 0
		for _, c := range usageStringCols {
			b.Field(i).(*array.StringBuilder).Append(c.get(&u))
			i++
		}
		for _, c := range unreadUsageCols {
			b.Field(i).(*array.StringBuilder).Append(c.value)
			i++
		}
		b.Field(i).(*array.Int32Builder).Append(u.SchemaVersion)
		b.Field(i + 1).(*array.TimestampBuilder).Append(arrow.Timestamp(u.EventTime.UnixMicro()))
		appendMap(b.Field(i+2).(*array.MapBuilder), unreadEndpointTags)
		appendMap(b.Field(i+3).(*array.MapBuilder), u.RequestTags)
		b.Field(i + 4).(*array.Int64Builder).Append(u.InputTokens)
		b.Field(i + 5).(*array.Int64Builder).Append(u.OutputTokens)
		b.Field(i + 6).(*array.Int64Builder).Append(u.TotalTokens)
		sb := b.Field(i + 7).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(u.TokenDetails.CacheReadInputTokens)
		sb.FieldBuilder(1).(*array.Int64Builder).Append(u.TokenDetails.CacheCreationInputTokens)
		sb.FieldBuilder(2).(*array.Int64Builder).Append(u.TokenDetails.OutputReasoningTokens)
		b.Field(i + 8).(*array.Int32Builder).Append(u.StatusCode)
		b.Field(i + 9).(*array.Int64Builder).Append(u.LatencyMS)
		b.Field(i + 10).(*array.StringBuilder).AppendNull()
	}
	return b.NewRecordBatch()
}

// TestParquetCells covers Arrow types an export may use that the usage
// writer does not: other timestamp units and zones, nulls everywhere, and
// invalid values in typed columns.
func TestParquetCells(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "trace_id", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "request_time", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
		{Name: "execution_duration_ms", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "state", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "trace_metadata", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "tags", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "request_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 1, time.UTC)
	type row struct {
		id    string
		ts    *time.Time
		dur   uint32
		meta  map[string]string
		tags  map[string]int64
		valid bool
	}
	rows := []row{
		{id: "tr-1", ts: &t0, dur: 7, meta: map[string]string{schemas.TraceUserKey: "ann@example.com"}, valid: true},
		{id: "tr-2", ts: &t0, meta: nil, valid: true},
		{id: "tr-3", ts: nil, valid: false},                                       // request_time null: missing
		{id: "tr-4", ts: &t0, tags: map[string]int64{"n": 1}, valid: false},       // a non-string map value
		{id: "tr-\xff", ts: &t0, meta: map[string]string{"a": "b"}, valid: false}, // invalid UTF-8 in a string column
	}
	for _, r := range rows {
		b.Field(0).(*array.LargeStringBuilder).Append(r.id)
		if r.ts == nil {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.UnixNano()))
		}
		b.Field(2).(*array.Uint32Builder).Append(r.dur)
		b.Field(3).AppendNull()
		mb := b.Field(4).(*array.MapBuilder)
		if r.meta == nil {
			mb.AppendNull()
		} else {
			mb.Append(true)
			for k, v := range r.meta {
				mb.KeyBuilder().(*array.StringBuilder).Append(k)
				mb.ItemBuilder().(*array.StringBuilder).Append(v)
			}
		}
		tb := b.Field(5).(*array.MapBuilder)
		if r.tags == nil {
			tb.AppendNull()
		} else {
			tb.Append(true)
			for k, v := range r.tags {
				tb.KeyBuilder().(*array.StringBuilder).Append(k)
				tb.ItemBuilder().(*array.Int64Builder).Append(v)
			}
		}
		b.Field(6).(*array.Date32Builder).Append(arrow.Date32FromTime(t0))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "traces.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	r := read(t, Spec{Kind: KindTrace, Path: path, AgentEndpoint: "agent"}, Window{})
	if r.Stats != (Stats{Files: 1, Rows: 5, Emitted: 2, Dead: 3}) {
		t.Fatalf("stats %+v; dead %+v", r.Stats, r.Dead)
	}
	a := r.Agents[0]
	if a.TraceID != "tr-1" || !a.StartTime.Equal(t0) || a.DurationMS != 7 || a.EndUser != "ann@example.com" || a.AgentEndpoint != "agent" {
		t.Fatalf("agent %+v", a)
	}
	want := []struct{ loc, field, reason string }{
		{"row 3", "request_time", "missing"},
		{"row 4", "tags", `value of key "n" is not a string: 1`},
		{"row 5", "trace_id", "invalid UTF-8"},
	}
	for i, w := range want {
		d := r.Dead[i]
		if d.Location != w.loc || d.Field != w.field || d.Reason != w.reason || !strings.HasPrefix(d.Record, `{"trace_id":`) {
			t.Errorf("dead %d: %+v, want %+v", i, d, w)
		}
	}
	if !strings.Contains(r.Dead[1].Record, `"tags":{"n":1}`) || !strings.Contains(r.Dead[2].Record, "tr-\uFFFD") {
		t.Errorf("records: %s | %s", r.Dead[1].Record, r.Dead[2].Record)
	}

	// A Parquet file of the wrong kind: no column usage reads, every row dead.
	r = read(t, Spec{Kind: KindUsage, Path: path}, Window{})
	if r.Stats.Dead != 5 || r.Dead[0].Field != "invocation_id" || r.Dead[4].Location != "row 5" {
		t.Fatalf("wrong kind: %+v %+v", r.Stats, r.Dead[0])
	}
}
