package databricks

import (
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/obolus/obolus/schemas"
)

// stageTypes are the Delta types of the stage's columns where not STRING.
var stageTypes = map[string]string{
	"event_time": "TIMESTAMP", "event_date": "DATE", "processed_at": "TIMESTAMP",
	"status_code": "INT", "candidates": "INT",
	"match_confidence": "DOUBLE", "weight": "DOUBLE", "cost_usd": "DOUBLE",
	"input_tokens": "BIGINT", "output_tokens": "BIGINT", "total_tokens": "BIGINT",
	"cache_read_input_tokens": "BIGINT", "cache_creation_input_tokens": "BIGINT",
	"output_reasoning_tokens": "BIGINT", "version": "BIGINT",
	"copy_seq": "BIGINT", "copy_event_ns": "BIGINT", "copy_total_tokens": "BIGINT", "copy_input_tokens": "BIGINT", "copy_masked": "BIGINT",
}

// stageType is a stage column's SQL type: STRING unless listed.
func stageType(c string) string {
	if t, ok := stageTypes[c]; ok {
		return t
	}
	return "STRING"
}

// writeParquet writes staged rows to a Parquet file with the stage's column names
// and types (timestamps in UTC at microsecond precision, event_date as
// DATE), Snappy-compressed.
func writeParquet(path string, rows []schemas.Staged) error {
	cols := schemas.StageColumns()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		var t arrow.DataType
		switch stageType(c) {
		case "TIMESTAMP":
			t = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
		case "DATE":
			t = arrow.FixedWidthTypes.Date32
		case "INT":
			t = arrow.PrimitiveTypes.Int32
		case "BIGINT":
			t = arrow.PrimitiveTypes.Int64
		case "DOUBLE":
			t = arrow.PrimitiveTypes.Float64
		default:
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: c, Type: t, Nullable: c == "processed_at"}
	}
	schema := arrow.NewSchema(fields, nil)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("stage Parquet: %w", err)
	}
	defer f.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(1<<20))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("stage Parquet: %w", err)
	}
	const batch = 1 << 16
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	n := 0
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		n = 0
		return w.WriteBuffered(rec)
	}
	for i := range rows {
		appendRecord(b, &rows[i])
		if n++; n == batch {
			if err = flush(); err != nil {
				break
			}
		}
	}
	if err == nil && n > 0 {
		err = flush()
	}
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("stage Parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("stage Parquet: %w", err)
	}
	return nil
}

func appendRecord(b *array.RecordBuilder, sr *schemas.Staged) {
	r := &sr.Attribution
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	i64 := func(i int, v int64) { b.Field(i).(*array.Int64Builder).Append(v) }
	f64 := func(i int, v float64) { b.Field(i).(*array.Float64Builder).Append(v) }
	i32 := func(i int, v int32) { b.Field(i).(*array.Int32Builder).Append(v) }
	ts := func(i int, t time.Time) {
		tb := b.Field(i).(*array.TimestampBuilder)
		if t.IsZero() {
			tb.AppendNull()
			return
		}
		tb.Append(arrow.Timestamp(t.UnixMicro()))
	}
	str(0, r.InvocationID)
	str(1, r.RequestID)
	ts(2, r.EventTime)
	b.Field(3).(*array.Date32Builder).Append(arrow.Date32FromTime(r.EventTime.UTC()))
	str(4, r.AccountID)
	str(5, r.WorkspaceID)
	str(6, r.EndpointID)
	str(7, r.EndpointName)
	str(8, r.DestinationModel)
	str(9, r.Requester)
	i32(10, r.StatusCode)
	str(11, r.UsageSource)
	str(12, r.EndUser)
	str(13, r.Team)
	str(14, r.CostCenter)
	str(15, r.AgentEndpoint)
	str(16, r.TraceID)
	str(17, r.AgentRequestID)
	str(18, r.Session)
	str(19, r.MatchMethod)
	f64(20, r.MatchConfidence)
	i32(21, r.Candidates)
	f64(22, r.Weight)
	str(23, r.Reason)
	i64(24, r.InputTokens)
	i64(25, r.OutputTokens)
	i64(26, r.TotalTokens)
	i64(27, r.CacheReadInputTokens)
	i64(28, r.CacheCreationInputTokens)
	i64(29, r.OutputReasoningTokens)
	f64(30, r.CostUSD)
	str(31, r.PriceListVersion)
	i64(32, r.Version)
	str(33, r.RunID)
	ts(34, r.ProcessedAt)
	i64(35, sr.Copy.Seq)
	i64(36, sr.Copy.EventNanos)
	i64(37, sr.Copy.TotalTokens)
	i64(38, sr.Copy.InputTokens)
	i64(39, sr.Copy.Masked)
}
